//go:build ((linux && !android) || freebsd || openbsd || netbsd || dragonfly || (darwin && !ios) || windows) && !js

package platform

import (
	"fmt"
	"os/exec"
)

// openURL starts the system's opener for u and lets it run: the opener
// may wait for the browser, which the app must not.
func openURL(u string) error {
	cmd, err := startOpener(u)
	if err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it
	return nil
}

// startOpener starts the opener command for u.
func startOpener(u string) (*exec.Cmd, error) {
	name, args := opener(u)
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot open %s: %v", u, err)
	}
	return cmd, nil
}
