package chatapp

import (
	"bytes"
	"io"
	"testing"
)

// A stream read up to the bound says it is over it, and what it gives to
// send is never a prefix taken for the whole file.
func TestReadChosenKnowsAStreamOverTheBound(t *testing.T) {
	for _, tc := range []struct {
		size, limit int64
		over        bool
	}{{100, 100, false}, {101, 100, true}, {5000, 100, true}, {1, 0, false}} {
		data := bytes.Repeat([]byte("x"), int(tc.size))
		_, size, content, _, over, err := readChosen(io.NopCloser(bytes.NewReader(data)), tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if over != tc.over {
			t.Errorf("%d bytes, limit %d: over = %v, want %v", tc.size, tc.limit, over, tc.over)
		}
		if !over && size != tc.size {
			t.Errorf("%d bytes, limit %d: size %d", tc.size, tc.limit, size)
		}
		if over && size != tc.limit {
			t.Errorf("%d bytes, limit %d: size %d, want the %d read", tc.size, tc.limit, size, tc.limit)
		}
		if content == nil {
			t.Fatal("no content")
		}
	}
}
