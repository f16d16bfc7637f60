//go:build windows

package platform

// opener is url.dll's FileProtocolHandler, which hands the URL to the
// default browser without a console window or a shell parsing it.
func opener(u string) (string, []string) {
	return "rundll32", []string{"url.dll,FileProtocolHandler", u}
}
