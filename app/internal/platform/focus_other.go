//go:build !js

package platform

// watchFocus: outside the browser the window's ConfigEvent tells the focus.
func watchFocus(report func(focused bool)) bool { return false }
