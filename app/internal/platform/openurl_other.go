//go:build !((linux && !android) || freebsd || openbsd || netbsd || dragonfly || (darwin && !ios) || windows || js || android)

package platform

import (
	"fmt"
	"runtime"
)

func openURL(u string) error {
	return fmt.Errorf("cannot open %s: opening links is not supported on %s", u, runtime.GOOS)
}
