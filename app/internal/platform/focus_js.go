//go:build js

package platform

import "syscall/js"

// watchFocus reports the page's focus from the browser's own events: the
// window's focus and blur, and the document's visibility. Gio's
// ConfigEvent.Focused follows the page's hidden text input instead, which
// loses the keyboard focus whenever no text field has it (the
// conversation list of a phone-sized page, a click that selects a
// message's text) while the person is looking at the page.
func watchFocus(report func(focused bool)) bool {
	doc := js.Global().Get("document")
	visible := func() bool { return doc.Get("visibilityState").String() != "hidden" }
	on := func(target js.Value, event string, focused func() bool) {
		target.Call("addEventListener", event, js.FuncOf(func(js.Value, []js.Value) any {
			f := focused()
			go report(f) // never block the browser's event loop
			return nil
		}))
	}
	on(js.Global(), "focus", visible)
	on(js.Global(), "blur", func() bool { return false })
	on(doc, "visibilitychange", func() bool { return visible() && doc.Call("hasFocus").Bool() })
	report(visible() && doc.Call("hasFocus").Bool())
	return true
}
