package main

import (
	"context"
	"fmt"
	"io"
)

// backupCluster writes the cluster's rooms, messages, names, read markers
// and mentions into a backup file of the single server's format.
func backupCluster(ctx context.Context, cfg *config, file string, force bool, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "chat-server backup: cluster mode (-nats) is not supported yet")
	return 1
}

// restoreCluster imports a backup file into an empty cluster.
func restoreCluster(ctx context.Context, cfg *config, file string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "chat-server restore: cluster mode (-nats) is not supported yet")
	return 1
}
