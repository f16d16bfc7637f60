//go:build android

package platform

import (
	"log/slog"

	"gioui.org/x/notify/android"
)

// newNotifier posts Android notifications on a channel of the app's own,
// "Messages", made at the first notification. Android 13 and later show
// them only once the user allowed notifications for the app in its
// settings (POST_NOTIFICATIONS): neither gogio nor x/notify asks.
func newNotifier(logger *slog.Logger) Notifier {
	var ch *android.NotificationChannel
	return newBackground(logger, func(title, body string) error {
		if ch == nil {
			var err error
			ch, err = android.NewChannel(android.ImportanceHigh, "messages", "Messages", "Direct messages and mentions")
			if err != nil {
				ch = nil
				return err
			}
		}
		_, err := ch.Send(title, body, false)
		return err
	})
}
