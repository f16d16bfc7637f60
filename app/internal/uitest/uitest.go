// Package uitest drives a Gio user interface without a window, the way a
// person would: it types into the focused editor, presses keys and clicks
// on what the semantic tree says is shown. Tests use it; the app does not.
package uitest

import (
	"fmt"
	"image"
	"strings"
	"time"
	"unicode/utf8"

	"gioui.org/f32"
	"gioui.org/io/input"
	"gioui.org/io/key"
	"gioui.org/io/pointer"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/unit"
)

// Driver runs frames of a layout function against an input.Router.
type Driver struct {
	Router *input.Router
	Ops    op.Ops
	Size   image.Point
	Metric unit.Metric
	layout func(gtx layout.Context)
	start  time.Time
	frames int

	// TextInput is whether the window's text input would be open after the
	// last frame: the browser's hidden textarea focused, Android's soft
	// keyboard shown. A window opens and closes it between frames, as the
	// router says; keys typed in the browser while it is closed are lost.
	TextInput bool
	// TextInputCloses counts the times a frame closed it.
	TextInputCloses int
}

// New returns a driver for a window of size pixels at one pixel per dp.
func New(size image.Point, layout func(gtx layout.Context)) *Driver {
	return &Driver{
		Router: new(input.Router),
		Size:   size,
		Metric: unit.Metric{PxPerDp: 1, PxPerSp: 1},
		layout: layout,
		start:  time.Now(),
	}
}

// Context returns a layout context for the next frame, its ops reset.
func (d *Driver) Context() layout.Context {
	d.Ops.Reset()
	d.frames++
	return layout.Context{
		Ops:         &d.Ops,
		Now:         d.start.Add(time.Duration(d.frames) * 16 * time.Millisecond),
		Metric:      d.Metric,
		Constraints: layout.Exact(d.Size),
		Source:      d.Router.Source(),
	}
}

// Frame lays out one frame and hands it to the router, which applies the
// frame's commands (focus, …) and learns where the handlers are. Like a
// window, it draws again at once when the frame asked for that (an
// op.InvalidateCmd without a time, or events the frame left pending), a
// few times at most.
func (d *Driver) Frame() {
	for range 4 {
		if !d.Step() {
			return
		}
	}
}

// Step lays out exactly one frame, hands it to the router and then, as a
// window does, opens or closes the text input as the frame asked. It
// reports whether the frame asked to be drawn again at once. Between two
// steps a window runs other code (it sets the title, the browser delivers
// keys), so what a step leaves behind is what a person can meet.
func (d *Driver) Step() (again bool) {
	gtx := d.Context()
	d.layout(gtx)
	d.Router.Frame(&d.Ops)
	switch d.Router.TextInputState() {
	case input.TextInputOpen:
		d.TextInput = true
	case input.TextInputClose:
		if d.TextInput {
			d.TextInputCloses++
		}
		d.TextInput = false
	}
	at, ok := d.Router.WakeupTime()
	return ok && at.IsZero()
}

// Type enters text into the focused editor at its caret, as a window
// does for typed characters (app.Window's EditorInsert): replace the
// selection, then move the caret after the text. Then it runs a frame.
func (d *Driver) Type(text string) {
	sel := d.Router.EditorState().Selection.Range
	d.Router.Queue(key.EditEvent{Range: sel, Text: text})
	start := min(sel.Start, sel.End) + utf8.RuneCountInString(text)
	d.Router.Queue(key.SelectionEvent{Start: start, End: start})
	d.Frame()
}

// Press presses and releases a key with modifiers, then runs a frame. An
// unhandled Tab moves the focus, as a window does.
func (d *Driver) Press(name key.Name, mods key.Modifiers) {
	press := key.Event{Name: name, Modifiers: mods, State: key.Press}
	d.Router.Queue(press, key.Event{Name: name, Modifiers: mods, State: key.Release})
	if name == key.NameTab && mods&^key.ModShift == 0 {
		dir := key.FocusForward
		if mods == key.ModShift {
			dir = key.FocusBackward
		}
		d.Router.MoveFocus(dir)
	}
	d.Frame()
}

// Click clicks the primary mouse button at p, then runs a frame.
func (d *Driver) Click(p f32.Point) {
	d.Router.Queue(
		pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Position: p},
		pointer.Event{Kind: pointer.Press, Source: pointer.Mouse, Buttons: pointer.ButtonPrimary, Position: p},
		pointer.Event{Kind: pointer.Release, Source: pointer.Mouse, Position: p},
	)
	d.Frame()
}

// Scroll scrolls by dy pixels at p (negative: towards the top), then runs
// a frame.
func (d *Driver) Scroll(p f32.Point, dy float32) {
	d.Router.Queue(
		pointer.Event{Kind: pointer.Move, Source: pointer.Mouse, Position: p},
		pointer.Event{Kind: pointer.Scroll, Source: pointer.Mouse, Position: p, Scroll: f32.Pt(0, dy)},
	)
	d.Frame()
}

// Node is one visible piece of the semantic tree.
type Node struct {
	Text   string // label or description
	Bounds image.Rectangle
	// Target is the area a click on the node lands in: the node's own if
	// it is clickable, else its nearest clickable ancestor's, else the
	// node's top left corner. (A label's bounds reach as far as its
	// constraints allowed, so their middle may be outside the text.)
	Target image.Rectangle
	// Clickable reports whether Target is a clickable area.
	Clickable bool
}

// Nodes lists the labels and descriptions of the last frame, in tree order.
func (d *Driver) Nodes() []Node {
	var out []Node
	var walk func(n input.SemanticNode, click image.Rectangle)
	walk = func(n input.SemanticNode, click image.Rectangle) {
		// A scrolling list takes presses too (to drag), but a click on a
		// text in it is meant for the text, not for the whole list.
		if g := n.Desc.Gestures; g&input.ClickGesture != 0 && g&input.ScrollGesture == 0 {
			click = n.Desc.Bounds
		}
		for _, s := range []string{n.Desc.Label, n.Desc.Description} {
			if s == "" {
				continue
			}
			target := click
			if target.Empty() {
				target = image.Rectangle{Min: n.Desc.Bounds.Min, Max: n.Desc.Bounds.Min.Add(image.Pt(8, 8))}
			}
			out = append(out, Node{Text: s, Bounds: n.Desc.Bounds, Target: target, Clickable: !click.Empty()})
		}
		for _, c := range n.Children {
			walk(c, click)
		}
	}
	nodes := d.Router.AppendSemantics(nil)
	if len(nodes) > 0 {
		walk(nodes[0], image.Rectangle{})
	}
	return out
}

// Texts returns the texts of Nodes.
func (d *Driver) Texts() []string {
	var out []string
	for _, n := range d.Nodes() {
		out = append(out, n.Text)
	}
	return out
}

// Count returns how many of texts (from Texts) are exactly s: a message
// shown twice is a bug a test must see.
func Count(texts []string, s string) int {
	n := 0
	for _, t := range texts {
		if t == s {
			n++
		}
	}
	return n
}

// Clipboard returns what the UI last put on the clipboard, as a window
// would take it from the router, and whether it put anything there.
func (d *Driver) Clipboard() (string, bool) {
	_, b, ok := d.Router.WriteClipboard()
	return string(b), ok
}

// Find returns the first node whose text is s, else the first whose text
// contains s.
func (d *Driver) Find(s string) (Node, bool) {
	nodes := d.Nodes()
	for _, n := range nodes {
		if n.Text == s {
			return n, true
		}
	}
	for _, n := range nodes {
		if strings.Contains(n.Text, s) {
			return n, true
		}
	}
	return Node{}, false
}

// Shows reports whether some visible text contains s.
func (d *Driver) Shows(s string) bool {
	_, ok := d.Find(s)
	return ok
}

// ClickOn clicks the middle of the first node whose text contains s.
func (d *Driver) ClickOn(s string) error {
	n, ok := d.Find(s)
	if !ok {
		return fmt.Errorf("nothing shows %q; shown: %q", s, d.Texts())
	}
	c := n.Target.Min.Add(n.Target.Max).Div(2)
	if !c.In(image.Rectangle{Max: d.Size}) {
		return fmt.Errorf("%q is outside the window (at %v, in %v): scroll first", s, c, d.Size)
	}
	d.Click(f32.Pt(float32(c.X), float32(c.Y)))
	return nil
}

// Focused returns the text of the focused editor (its first thousand
// characters), or "" when no editor has the focus. It asks for it as a
// window's input method does, with a snippet request, and runs a frame.
func (d *Driver) Focused() string {
	d.Router.Queue(key.SnippetEvent{Start: 0, End: 1000})
	d.Frame()
	return d.Router.EditorState().Snippet.Text
}

// TabTo presses Tab until the focused editor's text contains s, as a
// keyboard user would; it fails after going round the whole form.
func (d *Driver) TabTo(s string) error {
	for range 40 {
		if strings.Contains(d.Focused(), s) {
			return nil
		}
		d.Press(key.NameTab, 0)
	}
	return fmt.Errorf("no editor holding %q takes the focus", s)
}
