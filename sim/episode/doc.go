// Package episode runs simulated episodes in-process, faster than real time: a task (sim/task)
// on the simulator (sim) with the synthetic VLM (sim/vlm), driven at a fixed control rate either
// by a Policy (observation -> joint command) or by the scripted expert (sim/demo). It returns
// per-tick Records (time, the joint state the policy saw, the embedding, the command) and the
// task's metadata and success, as plain Go values for `flowact collect` (which writes them as
// bags) and `flowact eval`.
//
// Tick k happens at simulation time k/Rate since the start of the episode. In each tick the
// runner, in this order: updates the task with the end effector's true position (the episode
// ends when the task says so: success, failure or the time limit); lets the VLM observe the scene
// when an observation is due; reads the joint state through the simulator's faults (until a first
// state is visible, the tick is skipped: no command, no record); asks the policy or the expert
// for a command; writes it; records the tick; and steps the simulator by 1/Rate.
//
// Run owns the loop. For an external loop (policy.Loop in `flowact eval`), Runner.Start returns
// an Env: the loop drives Env.Driver and sleeps on Env.Clock, whose SleepUntil steps the
// simulation tick by tick, updating the task and the VLM (Env.Latest), and returns ErrDone when
// the episode is over. Result.Episode converts a finished episode into a dataset.Episode for
// writing as a ROS bag.
//
// Seeds: one episode seed determines everything: the scene (task.Reset), the expert's variation,
// the VLM's noise and the simulator's random faults (Config.Sim.Faults.Seed is mixed with it).
// The VLM's projections come from Config.VLM.Seed and are shared by all episodes of a Runner.
//
// Memory: a Result owns its Records; consecutive records share one embedding slice while the
// VLM's embedding has not changed.
package episode
