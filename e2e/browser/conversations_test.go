package browser_test

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"chat/internal/browsertest"
	"chat/internal/testserver"
)

// pageHooks runs in the page before the app (the driver's init command).
// It makes webuser one who was in #general and #random last time (the
// settings the app keeps in localStorage), and records, in
// window.chatTest, what the tests cannot see on the canvas:
//
//   - asked: each call of Notification.requestPermission, with the
//     permission then. The call goes on to the browser's own, after
//     window.chatTestAllow (the driver's allow command) has granted the
//     permission in the browser context, as a person's "Allow" in the
//     browser's prompt would (headless Chromium has no prompt: it denies).
//   - shown: each Notification constructed, with the permission then,
//     whether the page had the focus, and the browser's answer: the
//     notification's "show" event, or "error" when it was refused.
//   - blurred: the elements (and "window") that lost the focus.
const pageHooks = `(() => {
  if (location.protocol !== "http:") return;
  const server = "ws://" + location.host + "/ws";
  if (localStorage.getItem("chat.settings") === null) {
    localStorage.setItem("chat.settings", JSON.stringify({name: "webuser", room: "general", rooms: {[server]: ["general", "random"]}}));
  }
  const rec = window.chatTest = {asked: [], shown: [], blurred: []};
  document.addEventListener("blur", (e) => rec.blurred.push(e.target.tagName), true);
  window.addEventListener("blur", (e) => { if (e.target === window) rec.blurred.push("window"); });
  const N = window.Notification;
  const ask = N.requestPermission.bind(N);
  N.requestPermission = async (...args) => {
    rec.asked.push(N.permission);
    await window.chatTestAllow();
    return ask(...args);
  };
  window.Notification = new Proxy(N, {construct(target, args, newTarget) {
    const n = {title: String(args[0]), body: String((args[1] || {}).body), permission: N.permission, focused: document.hasFocus(), event: ""};
    rec.shown.push(n);
    const real = Reflect.construct(target, args, newTarget);
    real.addEventListener("show", () => { n.event = "show"; });
    real.addEventListener("error", () => { n.event = "error"; });
    return real;
  }});
})()`

// The page's size in CSS pixels (Gio's dp in the browser): wide enough
// for the list beside the conversation (ui's wideFrom, 640 dp).
const pageW, pageH = 960, 680

// Of the conversation list (app/internal/ui/sidebar.go), in dp: its
// width, and where a row's badge is (right-aligned, inset 12 dp, at
// least 22 dp wide), short of the divider beside the list.
const (
	sidebarW   = 272
	badgeX0    = 200
	badgeX1    = 268
	badgeHalfH = 9
)

// divider is the light theme's divider color, that of a plain unread
// count's badge (app/internal/ui/theme.go).
var divider = color.RGBA{0xdf, 0xe1, 0xe6, 0xff}

// TestBrowserConversations is the desktop's TestDesktopConversations in
// the browser: webuser, in #general and #random since last time, opens
// the page of a real server, served the web client built from this tree,
// in headless Chromium, and joins with the filled form; bob, on the
// terminal client (cmd/chat), writes in #random. The list shows the
// unread badge in #random's row and the tab's title counts it; a click on
// the row opens #random and clears both. The page asks for the
// notification permission only when webuser clicks "Turn on
// notifications"; then webuser turns to another tab, and bob writes to
// webuser directly: the browser shows a Web Notification with bob's words,
// and the conversation with bob is in the list.
//
// What "turning to another tab" is: the app takes the window's focus
// from Gio's app.ConfigEvent, which in the browser follows the focus of
// Gio's hidden text input (its focus and blur events), and a focused
// element loses the focus when its window does. Playwright tells every
// page it has the focus (focus emulation); the driver's realfocus turns
// that off, and hide puts a second tab in front, so the page's window and
// text input really lose the focus, as when a person switches tabs.
// (Headless Chromium leaves document.visibilityState "visible": it has
// no screen to hide a tab from; the app does not look at it.)
func TestBrowserConversations(t *testing.T) {
	b := browsertest.Start(t)
	web := buildWeb(t)
	srv := testserver.Start(t, testserver.Options{Args: []string{"-web", web}})
	bob := startTerminal(t, srv.Addr, "bob", "-room", "random")
	bob.waitLine("-- joined random")
	shots := browsertest.ScreenshotDir()
	shot := func(name string) string { return filepath.Join(shots, "browser-conversations-"+name+".png") }

	b.Do(fmt.Sprintf("viewport %d %d", pageW, pageH))
	b.Do("init " + jsString(pageHooks))
	b.Do("allow chatTestAllow notifications")
	b.Do("goto http://" + srv.HTTPAddr + "/")
	b.Do("realfocus")
	b.WaitApp()
	b.Do("press Enter") // the form is filled in from last time
	bob.waitLine("* webuser joined")

	// The list: both rooms, and the offer to turn notifications on,
	// which the page has not acted on by itself.
	var rows map[string]word
	if !pollWords(t, b, shot("1-list"), func(ws []word) bool {
		rows = sideWords(ws, "general", "random", "notifications")
		return len(rows) == 3
	}) {
		t.Fatalf("the list does not show #general, #random and “Turn on notifications” (it shows %v; permission requests: %v); see %s",
			rows, evalJSON[[]string](t, b, "window.chatTest.asked"), shot("1-list"))
	}
	if asked := evalJSON[[]string](t, b, "window.chatTest.asked"); len(asked) != 0 {
		t.Errorf("the page asked for the notification permission before the user turned notifications on: %v", asked)
	}

	// bob writes in #random, which is not open: unread.
	bob.say("hello from random")
	b.WaitTitle("the unread message in #random", func(s string) bool { return s == "(1) #general — Chat" })
	unread := shot("2-unread")
	b.Screenshot(unread)
	img := readPNG(t, unread)
	if !hasBadge(img, rows["random"]) {
		t.Errorf("no unread badge in #random's row of the list; see %s", unread)
	}
	if hasBadge(img, rows["general"]) {
		t.Errorf("a badge in #general's row, which has nothing unread: the check sees what is not there; see %s", unread)
	}

	// A click on the row opens #random, at its bottom, in a focused
	// page: read, the badge and the count go.
	click(b, rows["random"])
	b.WaitTitle("the message in #random read", func(s string) bool { return s == "#random — Chat" })
	read := shot("3-read")
	waitScreen(t, b, read, "the badge in #random's row to go", func(img image.Image) bool { return !hasBadge(img, rows["random"]) })
	if !pollWords(t, b, read, func(ws []word) bool { return len(paneWords(ws, "hello", "from", "random")) == 3 }) {
		t.Errorf("the conversation does not show bob's message in #random; see %s", read)
	}

	// Notifications: the permission is asked for when the user clicks
	// the offer, and the offer goes once it is answered.
	click(b, rows["notifications"])
	b.WaitFor("the permission asked for and granted", `window.chatTest.asked.length > 0 && Notification.permission === "granted"`)
	if !pollWords(t, b, shot("4-allowed"), func(ws []word) bool { return len(sideWords(ws, "notifications")) == 0 }) {
		t.Fatalf("the offer to turn notifications on stays after they were allowed; see %s", shot("4-allowed"))
	}
	if asked := evalJSON[[]string](t, b, "window.chatTest.asked"); len(asked) != 1 || asked[0] != "default" {
		t.Errorf("permission requests, with the permission at each: %v; want one, when it was still \"default\"", asked)
	}

	// webuser answers in #random: the composer has the keys after the
	// clicks. Sending does not ask again.
	b.Do("type hi bob")
	b.Do("press Enter")
	bob.waitLine("webuser: hi bob")
	if n := evalJSON[int](t, b, "window.chatTest.asked.length"); n != 1 {
		t.Errorf("%d permission requests after the first message, want the one", n)
	}

	// webuser turns to another tab: the page's text input, which had the
	// focus, loses it with the window. Once the test sees the blur in
	// chatTest, the browser has also run Gio's listener of it, and Go's
	// WebAssembly runtime returns from a listener to JavaScript only once
	// every goroutine is idle: the window's ConfigEvent (not focused) has
	// reached the app's loop before bob writes.
	if got := evalJSON[string](t, b, `document.hasFocus() ? document.activeElement.tagName : "nothing (the window)"`); got != "TEXTAREA" {
		t.Fatalf("before the page went to the background, %s had the focus, not the text input: the app did not have the focus to lose", got)
	}
	// Nor did it lose it on the way, with the clicks on the canvas: it
	// would have taken each click for the user turning away.
	if blurred := evalJSON[[]string](t, b, "window.chatTest.blurred"); len(blurred) != 0 {
		t.Errorf("before the page went to the background, these lost the focus: %v", blurred)
	}
	if shown := evalJSON[[]notification](t, b, "window.chatTest.shown"); len(shown) != 0 {
		t.Errorf("notifications while the page was in front: %+v", shown)
	}
	b.Do("hide")
	b.WaitFor("the text input and the window to lose the focus",
		`window.chatTest.blurred.includes("TEXTAREA") && window.chatTest.blurred.includes("window") && !document.hasFocus()`)

	bob.say("/msg webuser psst, webuser: lunch?")
	b.WaitFor("a notification the browser showed or refused", `window.chatTest.shown.some((n) => n.event !== "")`)
	shown := evalJSON[[]notification](t, b, "window.chatTest.shown")
	want := notification{Title: "bob", Body: "psst, webuser: lunch?", Permission: "granted", Focused: false, Event: "show"}
	if len(shown) != 1 || shown[0] != want {
		t.Errorf("notifications %+v, want one: %+v", shown, want)
	}
	b.WaitTitle("the conversation with bob, unread", func(s string) bool { return s == "(1) #random — Chat" })

	// Back to the tab: the conversation with bob is in the list.
	b.Do("show")
	b.WaitFor("the page to have the focus again", "document.hasFocus()")
	if !pollWords(t, b, shot("5-direct"), func(ws []word) bool { return len(sideWords(ws, "bob")) == 1 }) {
		t.Errorf("the conversation with bob is not in the list; see %s", shot("5-direct"))
	}
	t.Logf("notification shown: %+v; screenshots in %s", shown, shots)
}

// notification is one that the page made (pageHooks' shown).
type notification struct {
	Title, Body, Permission string
	Focused                 bool
	Event                   string
}

// jsString is s as a JSON string, one line for the driver.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// evalJSON evaluates a JavaScript expression in the page.
func evalJSON[T any](t *testing.T, b *browsertest.Browser, expr string) T {
	t.Helper()
	var v T
	out := b.Do("eval " + expr)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("eval %s: %q: %v", expr, out, err)
	}
	return v
}

// word is one word Tesseract read, and its box in screenshot pixels.
type word struct {
	text       string
	x, y, w, h int
	scale      int // screenshot pixels per CSS pixel
}

// screenWords reads the words of a screenshot.
func screenWords(t *testing.T, png string, img image.Image) []word {
	t.Helper()
	cmd := exec.Command("tesseract", png, "-", "-l", "eng", "--psm", "11", "tsv")
	// One thread: on a busy machine Tesseract's threads only wait for
	// each other.
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tesseract: %v", err)
	}
	scale := img.Bounds().Dx() / pageW
	var words []word
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 12 || f[0] != "5" || strings.TrimSpace(f[11]) == "" {
			continue
		}
		w := word{text: strings.ToLower(strings.TrimSpace(f[11])), scale: scale}
		w.x, _ = strconv.Atoi(f[6])
		w.y, _ = strconv.Atoi(f[7])
		w.w, _ = strconv.Atoi(f[8])
		w.h, _ = strconv.Atoi(f[9])
		words = append(words, w)
	}
	return words
}

// sideWords returns, of the words wanted, those read in the conversation
// list (a word read as part of another, "#random" for "random", counts).
func sideWords(words []word, want ...string) map[string]word {
	found := map[string]word{}
	for _, w := range words {
		if w.x+w.w > sidebarW*w.scale {
			continue
		}
		for _, s := range want {
			if strings.Contains(w.text, s) {
				found[s] = w
			}
		}
	}
	return found
}

// paneWords returns, of the words wanted, those read right of the list:
// in the open conversation.
func paneWords(words []word, want ...string) map[string]word {
	found := map[string]word{}
	for _, w := range words {
		if w.x > sidebarW*w.scale && slices.Contains(want, w.text) {
			found[w.text] = w
		}
	}
	return found
}

// center is the middle of a word, in CSS pixels.
func (w word) center() image.Point {
	return image.Pt((w.x+w.w/2)/w.scale, (w.y+w.h/2)/w.scale)
}

// click clicks the middle of a word.
func click(b *browsertest.Browser, w word) {
	p := w.center()
	b.Do(fmt.Sprintf("click %d %d", p.X, p.Y))
}

// hasBadge reports whether the row of the list whose name is w shows a
// plain unread count: the badge's color, right in the row.
func hasBadge(img image.Image, w word) bool {
	s, y := w.scale, (w.y + w.h/2)
	r := image.Rect(badgeX0*s, y-badgeHalfH*s, badgeX1*s, y+badgeHalfH*s).Intersect(img.Bounds())
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(img.At(x, y), divider) {
				n++
			}
		}
	}
	return n >= 20*s*s // a pill of 22×18 dp, less its text
}

// near reports whether c is about want (a few levels per channel).
func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, y uint8) int { return max(int(x>>8)-int(y), int(y)-int(x>>8)) }
	return d(r, want.R) <= 6 && d(g, want.G) <= 6 && d(b, want.B) <= 6
}

// waitScreen takes screenshots until one satisfies ok, as the page draws
// its next frames, and keeps the last at path.
func waitScreen(t *testing.T, b *browsertest.Browser, path, what string, ok func(image.Image) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b.Screenshot(path)
		if ok(readPNG(t, path)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; see %s", what, path)
		}
	}
}

// pollWords takes screenshots until the words read in one satisfy ok,
// for up to 30 s, keeps the last at path and reports whether it did.
func pollWords(t *testing.T, b *browsertest.Browser, path string, ok func([]word) bool) bool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.Screenshot(path)
		if ok(screenWords(t, path, readPNG(t, path))) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
