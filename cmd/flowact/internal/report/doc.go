// Package report writes what `flowact eval --out DIR` and `flowact demo --out DIR` leave to
// inspect: one JSON line per episode (episodes.jsonl), the run's summary as the command printed
// it (summary.json, summary.txt), per task a plot of the end effector's paths seen from above
// and from the side with goals and obstacles and the failed episodes highlighted
// (<task>-paths.png), per failed episode a plot of its joint trajectories and its distance to
// the goal (<task>-<seed>-joints.png), and an index.html that links all of them.
//
// Positions are in the robot's root frame (z up), m; joint positions in rad (or m for
// prismatic joints); times in s since the episode's start. Write refuses a directory that holds
// anything unless told to overwrite; it never leaves a partly written file under a final name
// (each file is written to a temporary name and renamed).
package report
