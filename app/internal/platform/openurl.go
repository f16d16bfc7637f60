package platform

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// OpenURL opens rawURL in the system's browser (or mail program, for
// mailto): xdg-open on Linux and the BSDs, open on macOS, the URL handler
// of url.dll on Windows, a new tab (window.open, noopener) in the
// browser, an ACTION_VIEW intent on Android. Only http, https and mailto
// addresses are opened: a message must not make the device run a file or
// a script. It returns once the opener is started; whether a browser
// then shows the page is not known.
func OpenURL(rawURL string) error {
	u, err := CheckURL(rawURL)
	if err != nil {
		return err
	}
	return openURL(u)
}

// CheckURL returns rawURL if OpenURL opens it, or why it will not.
func CheckURL(rawURL string) (string, error) {
	if rawURL == "" || strings.ContainsFunc(rawURL, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", errors.New("not a web address")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("not a web address: %v", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return "", fmt.Errorf("%q names no host", rawURL)
		}
	case "mailto":
		if u.Opaque == "" && u.Path == "" {
			return "", fmt.Errorf("%q names no address", rawURL)
		}
	default:
		return "", fmt.Errorf("%q is not a web address: only http, https and mailto links are opened", rawURL)
	}
	// As given: serializing the parsed form would escape what browsers
	// read as it is (a host in Cyrillic would become %D0%BF…).
	return rawURL, nil
}
