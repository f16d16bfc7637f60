package ui

import (
	"net"
	"net/url"
	"strings"

	"gioui.org/io/key"
	"gioui.org/layout"
	"gioui.org/op"
	"gioui.org/unit"
	"gioui.org/widget"
	"gioui.org/widget/material"

	"chat/protocol"
)

// Field names a join form field, so a failure can put the cursor where
// the fix is.
type Field int

// Form fields.
const (
	NoField Field = iota
	ServerField
	NameField
	RoomField
	// KeyField is the server's access key; a failure naming it also shows
	// the field, which is hidden for servers that never asked for a key.
	KeyField
)

// joinScreen is the form: server, its access key when it needs one, name,
// room and the Join button, with the certificate prompt and the name key
// panel when they apply.
type joinScreen struct {
	showServer              bool
	server, key, name, room widget.Editor
	joinBtn                 widget.Clickable
	joining                 bool           // a JoinIntent is out and no answer came yet
	target                  string         // server being joined, for the status line
	targetKey               string         // access key sent with that join
	err                     string         // why the last join failed
	errField                Field          // the field err is about: it shows under it
	focus                   *widget.Editor // to be focused by UI.moveFocus

	// list scrolls the form when it is taller than the window (a small
	// phone, an open panel). reveal asks the next frame to scroll a part
	// that just appeared into view.
	list   widget.List
	reveal part

	// Server keys. keys are those servers accepted (from the settings,
	// kept up to date as joins succeed); needKey are the servers that
	// refused a join without a key in this run. The key field shows for
	// them, or once the user typed a key.
	keys       map[string]string
	needKey    map[string]bool
	keyShown   bool
	keyFilled  string // what the app put into the key field from keys
	lastServer string // the server field as of the last frame

	cert      *certPrompt
	certNote  string // after forgetting a certificate: what happens next
	trustBtn  widget.Clickable
	forgetBtn widget.Clickable
	copyFPBtn widget.Clickable
	fpCopied  bool

	nk nameKeyPanel
}

// part is a piece of the form that can be scrolled into view.
type part int

const (
	noPart part = iota
	certPart
	nameKeyPart
	errPart
)

// certPrompt is a refused certificate waiting for the user's decision.
type certPrompt struct {
	CertificateRefused
	now, before widget.Selectable // the fingerprints, grouped for reading
}

func (j *joinScreen) init(cfg Config) {
	j.showServer = cfg.ShowServer
	for _, ed := range []*widget.Editor{&j.server, &j.key, &j.name, &j.room} {
		ed.SingleLine, ed.Submit = true, true
		ed.InputHint = key.HintText
	}
	j.server.InputHint = key.HintURL
	j.key.InputHint = key.HintPassword
	j.key.Mask = '•' // an access key is a password: not for onlookers
	j.server.SetText(cfg.Server)
	j.name.SetText(cfg.Name)
	room := cfg.Room
	if room == "" {
		room = protocol.DefaultRoom
	}
	j.room.SetText(room)
	j.focus = &j.name
	j.list.Axis = layout.Vertical
	j.keys = map[string]string{}
	for s, k := range cfg.Keys {
		j.keys[s] = k
	}
	j.needKey = map[string]bool{}
	j.serverChanged()
	j.nk.init(cfg.NameKey)
}

func (j *joinScreen) serverText() string { return strings.TrimSpace(j.server.Text()) }

// serverChanged follows the server field: the key field shows the key
// saved for that server, if any, unless the user typed one; a certificate
// prompt about another server no longer applies.
func (j *joinScreen) serverChanged() {
	s := j.serverText()
	j.lastServer = s
	if typed := j.key.Text(); typed == "" || typed == j.keyFilled {
		j.key.SetText(j.keys[s])
		j.keyFilled = j.keys[s]
	}
	j.keyShown = j.key.Len() > 0 || j.needKey[s]
	if j.cert != nil && j.cert.Server != s {
		j.cert = nil
	}
	j.certNote = ""
}

func (j *joinScreen) editor(f Field) *widget.Editor {
	switch f {
	case ServerField:
		if j.showServer {
			return &j.server
		}
	case NameField:
		return &j.name
	case RoomField:
		return &j.room
	case KeyField:
		return &j.key
	}
	return nil
}

// fail shows why a join did not work and keeps everything typed.
func (j *joinScreen) fail(f JoinFailed) {
	j.joining, j.err, j.errField = false, f.Reason, f.Field
	j.reveal = errPart
	if f.Field == KeyField {
		j.needKey[j.target] = true
		j.keyShown = true
	}
	if ed := j.editor(f.Field); ed != nil {
		j.focus = ed
		ed.SetCaret(ed.Len(), ed.Len()) // where the fix usually goes
	} else {
		j.errField = NoField // shown under the button
	}
	if f.OfferNameKey {
		j.nk.open, j.nk.entering = true, true
	}
}

// certRefused shows the certificate prompt (or warning) for e.
func (j *joinScreen) certRefused(e CertificateRefused) {
	j.joining, j.err, j.errField, j.certNote, j.fpCopied = false, "", NoField, "", false
	j.cert = &certPrompt{CertificateRefused: e}
	j.cert.now.SetText(groupFingerprint(e.Fingerprint))
	j.cert.before.SetText(groupFingerprint(e.Pinned))
	j.reveal = certPart
}

// joined records what a successful join teaches: the key the server
// accepted (the loop saves the same).
func (j *joinScreen) joined() {
	j.joining, j.err = false, ""
	if j.targetKey != "" {
		j.keys[j.target] = j.targetKey
	} else {
		delete(j.keys, j.target)
	}
	j.keyFilled = j.keys[j.serverText()]
}

// form checks the fields and returns the join they describe, or the
// problem to show and the field to fix.
func (j *joinScreen) form() (JoinIntent, string, Field) {
	in := JoinIntent{
		Server: j.serverText(),
		Name:   strings.TrimSpace(j.name.Text()),
		Room:   strings.TrimSpace(j.room.Text()),
		Key:    strings.TrimSpace(j.key.Text()),
	}
	if j.showServer {
		if in.Server == "" {
			return in, "Enter the server address, like localhost:7878 or tls://chat.example.org:7878.", ServerField
		}
		if problem := checkAddress(in.Server); problem != "" {
			return in, problem, ServerField
		}
	}
	if in.Name == "" {
		return in, "Enter the name to appear under.", NameField
	}
	if err := protocol.CheckName(in.Name); err != nil {
		return in, "That name cannot be used: it " + err.Error() + ".", NameField
	}
	// An invite code for an invite-only room goes after its name:
	// "club K3Y" (room names have no spaces).
	if room, code, ok := strings.Cut(in.Room, " "); ok {
		in.Room, in.Invite = room, strings.TrimSpace(code)
	}
	if in.Room == "" {
		in.Room = protocol.DefaultRoom
	}
	if err := protocol.CheckName(in.Room); err != nil {
		return in, "That room name cannot be used: it " + err.Error() + ".", RoomField
	}
	return in, "", NoField
}

// checkAddress says what is wrong with a server address, or with one of
// a comma-separated list of them (the nodes of a cluster), or "". The
// forms are those of the client library: host:port (tcp:// allowed),
// tls://host:port, and ws:// or wss:// URLs.
func checkAddress(list string) string {
	n := 0
	for addr := range strings.SplitSeq(list, ",") {
		if addr = strings.TrimSpace(addr); addr == "" {
			continue
		}
		n++
		if problem := checkOneAddress(addr); problem != "" {
			return problem
		}
	}
	if n == 0 {
		return "Enter the server address, like localhost:7878 or tls://chat.example.org:7878."
	}
	return ""
}

// checkOneAddress is checkAddress for one address.
func checkOneAddress(addr string) string {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		scheme, rest = "", addr
	}
	switch strings.ToLower(scheme) {
	case "", "tcp", "tls":
		if _, port, err := net.SplitHostPort(rest); err != nil || port == "" {
			return "The server address needs a host and a port, like localhost:7878 or tls://chat.example.org:7878."
		}
	case "ws", "wss":
		if u, err := url.Parse(addr); err != nil || u.Host == "" {
			return "That WebSocket address is not a URL with a host, like wss://chat.example.org/ws."
		}
	default:
		return "The app does not know the address form " + scheme + "://: use host:port, tls://host:port or a wss:// URL."
	}
	return ""
}

// update handles input and emits what the user asked for.
func (j *joinScreen) update(gtx layout.Context, u *UI) {
	submit := false
	for _, ed := range []*widget.Editor{&j.server, &j.key, &j.name, &j.room} {
		for {
			ev, ok := ed.Update(gtx)
			if !ok {
				break
			}
			if _, ok := ev.(widget.SubmitEvent); ok {
				submit = true
			}
		}
	}
	if j.serverText() != j.lastServer {
		j.serverChanged()
	}
	if j.key.Len() > 0 {
		j.keyShown = true
	}
	clicked := j.joinBtn.Clicked(gtx)
	trust := j.trustBtn.Clicked(gtx)
	if j.forgetBtn.Clicked(gtx) && j.cert != nil && j.cert.Pinned != "" {
		u.emit(ForgetCertIntent{Server: j.cert.Server, Addr: j.cert.Addr})
		j.certNote = "The certificate saved for " + j.cert.Node() + " is forgotten. Join again to see the certificate the server has now, and trust it only once its operator confirms it."
		j.cert = nil
		j.reveal = certPart
	}
	if j.copyFPBtn.Clicked(gtx) && j.cert != nil {
		copyText(gtx, j.cert.Fingerprint)
		j.fpCopied = true
	}
	if j.nk.update(gtx, u) {
		j.reveal = nameKeyPart
	}
	switch {
	case j.joining && clicked:
		j.joining = false
		u.session++
		u.shell = nil
		u.emit(CancelJoinIntent{})
	case j.joining:
		// Enter again while joining changes nothing.
	case trust && j.cert != nil && j.cert.Pinned == "" && j.cert.Fingerprint != "":
		// Only the fingerprint the user was shown is trusted, for the
		// server it came from; then the join is tried again.
		u.emit(TrustIntent{Server: j.cert.Server, Fingerprint: j.cert.Fingerprint, Addr: j.cert.Addr})
		j.start(u)
	case submit || clicked:
		j.start(u)
	}
}

// start begins the join the form describes, or says what to fix.
func (j *joinScreen) start(u *UI) {
	in, problem, f := j.form()
	if problem != "" {
		j.fail(JoinFailed{Reason: problem, Field: f})
		return
	}
	j.joining, j.err, j.errField, j.target, j.targetKey = true, "", NoField, in.Server, in.Key
	j.cert, j.certNote = nil, ""
	u.session++
	in.Session = u.session
	u.startShell(in.Name, in.Room)
	u.emit(in)
}

func (j *joinScreen) layout(gtx layout.Context, u *UI) layout.Dimensions {
	th := u.th
	return layout.Stack{Alignment: layout.N}.Layout(gtx,
		layout.Expanded(func(gtx layout.Context) layout.Dimensions {
			return layout.Dimensions{Size: gtx.Constraints.Min}
		}),
		layout.Stacked(func(gtx layout.Context) layout.Dimensions {
			gtx.Constraints.Max.X = min(gtx.Constraints.Max.X, gtx.Dp(420))
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return j.form2(gtx, th)
		}),
		layout.Stacked(func(gtx layout.Context) layout.Dimensions {
			// The theme toggle sits in the top right corner of the window.
			gtx.Constraints.Min.X = gtx.Constraints.Max.X
			return layout.NE.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				return layout.UniformInset(4).Layout(gtx, iconButton(th, &u.themeBtn, u.icons.theme, "Switch theme").Layout)
			})
		}),
	)
}

// form2 draws the fields, the prompts, the button and the status line, in
// a list that scrolls when they do not fit.
func (j *joinScreen) form2(gtx layout.Context, th *Theme) layout.Dimensions {
	var children []layout.Widget
	at := map[part]int{}
	add := func(w layout.Widget) { children = append(children, w) }
	mark := func(p part) { at[p] = len(children) }
	space := func(h unit.Dp) { add(layout.Spacer{Height: h}.Layout) }
	// errUnder shows the error under the field it is about, where the
	// user looks while fixing it.
	errUnder := func(f Field) {
		if j.err != "" && j.errField == f {
			space(6)
			mark(errPart)
			add(label(th, 14, j.err, th.Error).Layout)
		}
	}
	space(24)
	add(bold(label(th, 28, "Chat", th.Fg)).Layout)
	space(4)
	add(label(th, 14, "Join a room to start talking.", th.Muted).Layout)
	space(24)
	if j.showServer {
		add(func(gtx layout.Context) layout.Dimensions {
			return field(gtx, th, "Server", &j.server, "host:port or tls://host:port")
		})
		errUnder(ServerField)
		space(16)
	}
	if j.keyShown {
		add(func(gtx layout.Context) layout.Dimensions {
			return field(gtx, th, "Server key", &j.key, "The access key from the server's operator")
		})
		errUnder(KeyField)
		space(16)
	}
	switch {
	case j.cert != nil:
		mark(certPart)
		add(func(gtx layout.Context) layout.Dimensions { return j.certPanel(gtx, th) })
		space(16)
	case j.certNote != "":
		mark(certPart)
		add(label(th, 14, j.certNote, th.Muted).Layout)
		space(16)
	}
	add(func(gtx layout.Context) layout.Dimensions { return field(gtx, th, "Name", &j.name, "Your name") })
	errUnder(NameField)
	space(16)
	add(func(gtx layout.Context) layout.Dimensions {
		return field(gtx, th, "Room", &j.room, protocol.DefaultRoom)
	})
	errUnder(RoomField)
	// The name key is about the name, but its link comes after the room
	// so that Tab still goes from the name to the room.
	space(6)
	mark(nameKeyPart)
	add(func(gtx layout.Context) layout.Dimensions { return j.nk.layout(gtx, th) })
	space(18)
	add(func(gtx layout.Context) layout.Dimensions {
		txt := "Join"
		if j.joining {
			txt = "Cancel"
		}
		b := material.Button(&th.Theme, &j.joinBtn, txt)
		b.TextSize = 15
		b.Inset = layout.UniformInset(12)
		gtx.Constraints.Min.X = gtx.Constraints.Max.X
		return b.Layout(gtx)
	})
	space(16)
	switch {
	case j.err != "" && j.errField == NoField:
		mark(errPart)
		add(label(th, 14, j.err, th.Error).Layout)
	case j.joining && j.target != "":
		add(label(th, 14, "Connecting to "+j.target+"…", th.Muted).Layout)
	case j.joining:
		add(label(th, 14, "Connecting…", th.Muted).Layout)
	}
	space(24)

	dims := material.List(&th.Theme, &j.list).Layout(gtx, len(children), func(gtx layout.Context, i int) layout.Dimensions {
		return layout.Inset{Left: 24, Right: 24}.Layout(gtx, children[i])
	})
	if i, ok := at[j.reveal]; ok && j.reveal != noPart {
		if !j.visible(i) {
			j.list.ScrollTo(max(0, i-1))
			gtx.Execute(op.InvalidateCmd{})
		}
	}
	j.reveal = noPart
	return dims
}

// visible reports whether the form's child i was laid out whole in the
// last frame.
func (j *joinScreen) visible(i int) bool {
	p := j.list.Position
	last := p.First + p.Count - 1
	switch {
	case i < p.First || i > last:
		return false
	case i == p.First && p.Offset > 0:
		return false
	case i == last && p.OffsetLast < 0:
		return false
	}
	return true
}

// certPanel asks the user about a certificate the system does not trust,
// or warns that a trusted one changed.
func (j *joinScreen) certPanel(gtx layout.Context, th *Theme) layout.Dimensions {
	c := j.cert
	var rows []layout.FlexChild
	add := func(w layout.Widget) { rows = append(rows, layout.Rigid(w)) }
	space := func(h unit.Dp) { add(layout.Spacer{Height: h}.Layout) }
	border, bg := th.Accent, th.Surface
	if c.Pinned != "" {
		border, bg = th.Error, th.Warn
		add(bold(label(th, 16, "Warning: the server's certificate has changed", th.Error)).Layout)
		space(8)
		add(label(th, 14, "The certificate "+c.Node()+" presented is not the one you trusted before. "+
			"If its operator replaced the certificate, that is expected. If not, someone may be intercepting "+
			"the connection to read or change what you send. Do not continue until the operator confirms the change.", th.Fg).Layout)
		space(10)
		add(label(th, 13, "Trusted before", th.Muted).Layout)
		add(func(gtx layout.Context) layout.Dimensions { return mono(gtx, th, &c.before, th.Fg) })
		space(8)
		add(label(th, 13, "Presented now", th.Muted).Layout)
		add(func(gtx layout.Context) layout.Dimensions { return mono(gtx, th, &c.now, th.Error) })
		space(12)
		add(func(gtx layout.Context) layout.Dimensions {
			return outlinedButton(gtx, th, &j.forgetBtn, "Forget the saved certificate", th.Error)
		})
		space(6)
		add(label(th, 12, "Then the app treats the server as new: it shows the new certificate for you to check before trusting it.", th.Muted).Layout)
	} else {
		add(bold(label(th, 16, "This server's identity cannot be verified", th.Fg)).Layout)
		space(8)
		why := c.Why
		if why == "" {
			why = "This device does not trust its certificate."
		}
		add(label(th, 14, why+" Without checking, the app cannot tell "+c.Node()+" from someone pretending to be it.", th.Fg).Layout)
		space(10)
		add(label(th, 13, "Certificate fingerprint (SHA-256)", th.Muted).Layout)
		add(func(gtx layout.Context) layout.Dimensions { return mono(gtx, th, &c.now, th.Fg) })
		space(8)
		add(label(th, 13, "Compare it with the fingerprint the server's operator publishes (the server logs it when it starts: “tls: certificate loaded”). Trust the server only if they are the same.", th.Muted).Layout)
		space(12)
		copyTxt := "Copy fingerprint"
		if j.fpCopied {
			copyTxt = "Fingerprint copied"
		}
		add(func(gtx layout.Context) layout.Dimensions {
			return buttonPair(gtx, th, &j.trustBtn, "Trust this server", &j.copyFPBtn, copyTxt)
		})
	}
	return card(gtx, th, border, bg, func(gtx layout.Context) layout.Dimensions {
		return layout.Flex{Axis: layout.Vertical}.Layout(gtx, rows...)
	})
}

// field is a caption over an outlined single-line editor.
func field(gtx layout.Context, th *Theme, caption string, ed *widget.Editor, hint string) layout.Dimensions {
	return layout.Flex{Axis: layout.Vertical}.Layout(gtx,
		layout.Rigid(bold(label(th, 13, caption, th.Muted)).Layout),
		layout.Rigid(layout.Spacer{Height: 6}.Layout),
		layout.Rigid(func(gtx layout.Context) layout.Dimensions { return editorBox(gtx, th, ed, hint) }),
	)
}

// editorBox is an outlined single-line editor.
func editorBox(gtx layout.Context, th *Theme, ed *widget.Editor, hint string) layout.Dimensions {
	border := th.Divider
	width := unit.Dp(1)
	if gtx.Focused(ed) {
		border, width = th.Accent, 2
	}
	gtx.Constraints.Min.X = gtx.Constraints.Max.X
	return widget.Border{Color: border, CornerRadius: 8, Width: width}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
		return background(gtx, th.Surface, 8, func(gtx layout.Context) layout.Dimensions {
			return layout.Inset{Top: 10, Bottom: 10, Left: 12, Right: 12}.Layout(gtx, func(gtx layout.Context) layout.Dimensions {
				e := material.Editor(&th.Theme, ed, hint)
				e.HintColor = th.Muted
				return e.Layout(gtx)
			})
		})
	})
}

// groupFingerprint writes a fingerprint for people to compare: the hex
// digits of the digest in groups of four, eight groups a line. The
// "SHA256:" prefix goes (the caption says it).
func groupFingerprint(fp string) string {
	if len(fp) >= 7 && strings.EqualFold(fp[:7], "SHA256:") {
		fp = fp[7:]
	}
	fp = strings.ToLower(fp)
	var b strings.Builder
	for i := 0; i < len(fp); i += 4 {
		if i > 0 {
			if i%32 == 0 {
				b.WriteByte('\n')
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(fp[i:min(i+4, len(fp))])
	}
	return b.String()
}
