package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/flowact/flowact/robot/ros/master"
)

func newMasterCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "master",
		Short: "Run the embedded ROS 1 master and parameter server",
		Long: `Run flowact's in-process ROS 1 master (Master API and parameter server) on its own, so that
a machine with no ROS installed can host a ROS graph. Point other nodes at it with
ROS_MASTER_URI=http://HOST:PORT/. Stops on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			m, err := master.New(master.Config{Addr: addr, Logger: log})
			if err != nil {
				return usageError{err}
			}
			if err := m.Start(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ROS_MASTER_URI=%s\n", m.URI())
			<-cmd.Context().Done()
			return m.Close()
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:11311", "listen address host:port (port 0 picks a free port)")
	return cmd
}
