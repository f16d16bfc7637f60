//go:build !js && !android

package platform

import (
	"log/slog"

	"gioui.org/x/notify"
)

// newNotifier shows notifications with gioui.org/x/notify: the
// org.freedesktop.Notifications service of the D-Bus session bus on Linux
// and the BSDs, toasts on Windows, the notification center on macOS. The
// connection is made at the first notification, and again after a
// failure (a notification service started after the app).
func newNotifier(logger *slog.Logger) Notifier {
	var n notify.Notifier
	return newBackground(logger, func(title, body string) error {
		if n == nil {
			var err error
			if n, err = notify.NewNotifier(); err != nil {
				n = nil
				return err
			}
		}
		_, err := n.CreateNotification(title, body)
		return err
	})
}
