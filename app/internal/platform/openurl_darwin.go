//go:build darwin && !ios

package platform

func opener(u string) (string, []string) { return "open", []string{u} }
