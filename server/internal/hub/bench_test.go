package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"chat/protocol"
)

// countingMember takes frames and only counts them, so the benchmark
// measures the hub: encoding, locking and walking the members.
type countingMember struct{ frames atomic.Int64 }

func (m *countingMember) Deliver([]byte) { m.frames.Add(1) }
func (m *countingMember) Replay(_ context.Context, fs [][]byte) error {
	m.frames.Add(int64(len(fs)))
	return nil
}
func (m *countingMember) Fail(*protocol.Error) {}

// BenchmarkFanout broadcasts one stored message to every member of a room:
// one op is one message reaching all of them.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			h, _ := newHub(b, Config{})
			members := make([]*countingMember, n)
			for i := range members {
				members[i] = &countingMember{}
				if e := h.Connect(members[i]).Join(&protocol.Join{Room: "big", Name: fmt.Sprint("m", i)}); e != nil {
					b.Fatal(e)
				}
			}
			r := h.rooms["big"]
			msg := protocol.Msg{Room: "big", Sender: "m0", ID: "0123456789abcdef", Text: "a message of ordinary length, about sixty bytes"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg.Seq = r.delivered + 1
				h.broadcast(&msg)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
			if got := members[n-1].frames.Load(); got < int64(b.N) {
				b.Fatalf("the last member got %d frames for %d messages", got, b.N)
			}
		})
	}
}
