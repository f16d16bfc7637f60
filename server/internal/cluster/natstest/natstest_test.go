package natstest_test

import (
	"chat/server/internal/cluster/natstest"
	"github.com/nats-io/nats.go"
	"testing"
)

func TestThree(t *testing.T) {
	c := natstest.Start(t, 3)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c.Stop(1)
	c.Restart(1)
	c.WaitReady()
}
