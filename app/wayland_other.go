//go:build !linux || android

package main

// skipUnreachableWayland does nothing: only Linux desktops try Wayland.
func skipUnreachableWayland() {}
