package ui

import (
	"fmt"
	"image"
	"testing"
)

// TestImageCacheStaysUnderItsBound: pictures past the bound push out the
// least recently shown ones; one shown again stays.
func TestImageCacheStaysUnderItsBound(t *testing.T) {
	const each = 100 * 100 * 4
	c := newImageCache(10 * each)
	asks := 0
	ask := func() { asks++ }
	for i := range 10 {
		c.put(ImageLoaded{File: fmt.Sprint(i), Image: image.NewRGBA(image.Rect(0, 0, 100, 100))})
	}
	if _, ok := c.get("0", ask); !ok { // 0 is now the most recently shown
		t.Fatal("picture 0 gone before the bound was reached")
	}
	for i := 10; i < 15; i++ {
		c.put(ImageLoaded{File: fmt.Sprint(i), Image: image.NewRGBA(image.Rect(0, 0, 100, 100))})
		if c.used > c.max {
			t.Fatalf("cache holds %d bytes, over its bound %d", c.used, c.max)
		}
	}
	if _, ok := c.get("0", ask); !ok {
		t.Fatal("the picture shown last was dropped")
	}
	if _, ok := c.get("1", ask); ok {
		t.Fatal("the least recently shown picture stayed")
	}
	if asks != 1 {
		t.Fatalf("%d asks for the dropped picture, want 1", asks)
	}
	c.get("1", ask)
	if asks != 1 {
		t.Fatal("a picture on its way was asked for again")
	}
	c.put(ImageLoaded{File: "bad", Err: "damaged"})
	c.get("bad", ask)
	if asks != 1 {
		t.Fatal("a picture that failed was asked for again")
	}
	c.put(ImageLoaded{File: "offline", Err: "Not connected.", Transient: true})
	c.get("offline", ask)
	if asks != 1 {
		t.Fatal("a picture that failed for a passing reason was asked for again before a reconnect")
	}
	c.forgetAsked() // reconnected
	c.get("offline", ask)
	if asks != 2 {
		t.Fatal("a picture that failed for a passing reason was not asked for again after a reconnect")
	}
	c.get("bad", ask)
	if asks != 2 {
		t.Fatal("a damaged picture was asked for again after a reconnect")
	}
	if c.peak > c.max {
		t.Fatalf("peak %d over the bound %d", c.peak, c.max)
	}
}
