package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchat/orchat/accounts"
	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router/openroutertest"
	"github.com/orchat/orchat/slack"
	"github.com/orchat/orchat/stack/stacktest"
)

// The bad-input corpus (testdata/bad-inputs, format in its README.md): every
// case names an input and the clear message it must get. Commands,
// attachments and upstream faults run as lines of one console process
// against one simulator; config files run as `orchat --config FILE`.

const badInputDir = "../../testdata/bad-inputs"

// badKinds are the corpus's folders, in the order they run.
var badKinds = []string{"commands", "attachments", "upstream", "config", "http", "discord"}

// badCase is one file of the corpus.
type badCase struct {
	kind, name string
	want       []string
	wantKind   string // kind of the message holding want[0], if set
	user       string
	charged    string // "none": no charge row, nothing held; "some": at least one charge
	files      []string
	exit       int
	args       string
	env        map[string]string
	secrets    []string // config cases: text that must never be shown
	stdin      string   // config cases: "null" runs with stdin on /dev/null
	sign       string   // http cases: "yes" or "stale" signs the body as Slack would
	stall      bool     // http cases: send the request and then nothing
	fault      *openroutertest.Fault
	faultModel string
	body       string
}

func (c badCase) id() string { return c.kind + "/" + c.name }

// loadBadCases reads every case of the corpus.
func loadBadCases(t *testing.T) []badCase {
	t.Helper()
	var cases []badCase
	for _, kind := range badKinds {
		paths, err := filepath.Glob(filepath.Join(badInputDir, kind, "*.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseBadCase(kind, strings.TrimSuffix(filepath.Base(p), ".txt"), string(data))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			cases = append(cases, c)
		}
	}
	return cases
}

// parseBadCase reads "key: value" headers up to a line "---"; the rest is
// the body.
func parseBadCase(kind, name, data string) (badCase, error) {
	c := badCase{kind: kind, name: name, user: name, exit: exitUser, env: map[string]string{}}
	head, body, ok := strings.Cut(data, "\n---\n")
	if !ok {
		if head, ok = strings.CutSuffix(data, "\n---"); !ok {
			return c, fmt.Errorf(`no "---" line between the headers and the body`)
		}
	}
	c.body = strings.TrimSuffix(body, "\n")
	var f openroutertest.Fault
	hasFault := false
	for _, line := range strings.Split(head, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return c, fmt.Errorf("header %q is not key: value", line)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		var err error
		if fk, ok := strings.CutPrefix(key, "fault."); ok {
			hasFault = true
			if fk == "model" {
				c.faultModel = val
				continue
			}
			err = setFault(&f, fk, expand(val))
		} else {
			switch key {
			case "want":
				c.want = append(c.want, expand(val))
			case "kind":
				c.wantKind = val
			case "user":
				c.user = val
			case "charged":
				if val != "none" && val != "some" {
					err = fmt.Errorf("charged: %q, want none or some", val)
				}
				c.charged = val
			case "file":
				c.files = append(c.files, val)
			case "exit":
				c.exit, err = strconv.Atoi(val)
			case "args":
				c.args = val
			case "env":
				k, v, _ := strings.Cut(val, "=")
				c.env[k] = v
			case "secret":
				c.secrets = append(c.secrets, val)
			case "sign":
				if val != "yes" && val != "stale" && val != "no" {
					err = fmt.Errorf("sign: %q, want yes, stale or no", val)
				}
				c.sign = val
			case "stall":
				c.stall, err = strconv.ParseBool(val)
			case "stdin":
				if val != "null" {
					err = fmt.Errorf("stdin: %q, want null", val)
				}
				c.stdin = val
			default:
				err = fmt.Errorf("unknown header %q", key)
			}
		}
		if err != nil {
			return c, err
		}
	}
	if hasFault {
		c.fault = &f
	}
	switch {
	case len(c.want) == 0:
		return c, fmt.Errorf("no want: line")
	case kind == "upstream" && (c.fault == nil || !strings.Contains(c.body, "{fault}")):
		return c, fmt.Errorf("an upstream case needs fault.* headers and {fault} in its body")
	case kind == "attachments" && len(c.files) == 0 && !strings.Contains(c.body, "file://"):
		return c, fmt.Errorf("an attachments case needs a file: header or a file:// word")
	case kind == "discord" && !slices.Contains([]string{"INTERACTION_CREATE", "MESSAGE_CREATE"}, strings.TrimSpace(strings.SplitN(c.body, "\n", 2)[0])):
		return c, fmt.Errorf("a discord case's body starts with the event's name, INTERACTION_CREATE or MESSAGE_CREATE, then its JSON")
	case kind == "http" && !strings.Contains(strings.SplitN(c.body, "\n", 2)[0], " HTTP/1.1"):
		return c, fmt.Errorf("an http case's body starts with a request line such as POST /slack/events HTTP/1.1")
	}
	return c, nil
}

func setFault(f *openroutertest.Fault, key, val string) error {
	var err error
	b := func() bool { v, e := strconv.ParseBool(val); err = e; return v }
	d := func() time.Duration { v, e := time.ParseDuration(val); err = e; return v }
	switch key {
	case "status":
		f.Status, err = strconv.Atoi(val)
	case "message":
		f.Message = val
	case "retry_after":
		f.RetryAfter = val
	case "daily_cap":
		f.DailyCap = b()
	case "reasons":
		for _, r := range strings.Split(val, ",") {
			f.Reasons = append(f.Reasons, strings.TrimSpace(r))
		}
	case "html":
		f.HTML = b()
	case "empty_body":
		f.EmptyBody = b()
	case "body":
		f.Body = val
	case "answer":
		f.Answer = val
	case "first_byte_delay":
		f.FirstByteDelay = d()
	case "ttft":
		f.TTFT = d()
	case "mid_stream_error":
		f.MidStreamError = b()
	case "error_code":
		if n, e := strconv.Atoi(val); e == nil {
			f.ErrorCode = n
		} else {
			f.ErrorCode = val
		}
	case "truncate":
		f.Truncate = b()
	case "stall":
		f.Stall = b()
	case "bad_json":
		f.BadJSON = b()
	case "after_chunks":
		f.AfterChunks, err = strconv.Atoi(val)
	case "no_choices":
		f.NoChoices = b()
	case "flood":
		f.Flood, err = strconv.ParseInt(val, 10, 64)
	case "flood_event":
		f.FloodEvent = b()
	case "refusal":
		f.Refusal = val
	default:
		return fmt.Errorf("unknown fault field %q", key)
	}
	return err
}

var (
	runeRef   = regexp.MustCompile(`\{U\+([0-9A-Fa-f]{4,6})\}`)
	repeatRef = regexp.MustCompile(`\{repeat (\d+) ([^}]*)\}`)
)

// expand writes out {U+200B} (a code point), {nl} (a line feed) and
// {repeat N TEXT}, so invisible characters stay visible in the corpus and
// a megabyte stays a line.
func expand(s string) string {
	s = runeRef.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.ParseUint(runeRef.FindStringSubmatch(m)[1], 16, 32)
		return string(rune(n))
	})
	s = strings.ReplaceAll(s, "{nl}", "\n")
	return repeatRef.ReplaceAllStringFunc(s, func(m string) string {
		sm := repeatRef.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sm[1])
		return strings.Repeat(sm[2], n)
	})
}

// makeFile creates one file of an attachments case: "NAME text TEXT",
// "NAME hex BYTES", "NAME size N" (N zero bytes, sparse), "NAME png" (a
// real 2x2 PNG) or "NAME dir" (a folder).
func makeFile(dir, spec string) error {
	name, rest, _ := strings.Cut(spec, " ")
	how, arg, _ := strings.Cut(rest, " ")
	p := filepath.Join(dir, name)
	switch how {
	case "text":
		return os.WriteFile(p, []byte(expand(arg)), 0o644)
	case "hex":
		b, err := hex.DecodeString(strings.ReplaceAll(arg, " ", ""))
		if err != nil {
			return err
		}
		return os.WriteFile(p, b, 0o644)
	case "size":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return err
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := f.Truncate(n); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "png":
		var b bytes.Buffer
		if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
			return err
		}
		return os.WriteFile(p, b.Bytes(), 0o644)
	case "dir":
		return os.Mkdir(p, 0o755)
	}
	return fmt.Errorf("file %q: unknown kind %q (text, hex, size, png or dir)", spec, how)
}

// badConsoleConfig is the console's config for the corpus: an admin, no
// rate limit (one user sends several lines at once), and short upstream
// timeouts so stalls end quickly.
const badConsoleConfig = `admins = ["console:admin"]

[openrouter]
first_byte_timeout = "1500ms"
idle_timeout = "1s"
max_retry_after = "1s"

[router]
max_fallbacks = 1
max_tokens = 2048

[bot]
rate_limit_per_minute = 0
`

// consoleMsg is one --json line of the console.
type consoleMsg struct {
	Kind      string `json:"kind"`
	Status    string `json:"status"`
	Text      string `json:"text"`
	Footer    string `json:"footer"`
	CompareID string `json:"compare_id"`
	Charged   *int64 `json:"charged"`
	Panels    []struct {
		Status, Text, Error string
	} `json:"panels"`
}

func (m consoleMsg) all() string {
	s := m.Text + "\n" + m.Footer
	for _, p := range m.Panels {
		s += "\n" + p.Text + "\n" + p.Error
	}
	return s
}

// consoleDriver runs `orchat console --json --multi-user` in process and
// exchanges lines with it: after each line it sends a marker (an unknown
// command) and collects every message printed before the marker's reply.
type consoleDriver struct {
	in     *io.PipeWriter
	msgs   chan consoleMsg
	stderr *stacktest.SyncBuffer
	done   chan int
	marks  int
}

func startConsole(t *testing.T, args ...string) *consoleDriver {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	d := &consoleDriver{in: inW, msgs: make(chan consoleMsg, 1024), stderr: &stacktest.SyncBuffer{}, done: make(chan int, 1)}
	m := &Main{Stdin: inR, Stdout: outW, Stderr: d.stderr, Getenv: func(string) string { return "" }}
	go func() {
		code := m.Run(context.Background(), append([]string{"console", "--json", "--multi-user"}, args...))
		if err := m.Close(); err != nil {
			fmt.Fprintln(d.stderr, "close:", err)
			code = -1
		}
		outW.Close()
		inR.Close()
		d.done <- code
	}()
	go func() {
		defer close(d.msgs)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var msg consoleMsg
			if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
				msg = consoleMsg{Kind: "not-json", Text: sc.Text()}
			}
			d.msgs <- msg
		}
	}()
	return d
}

// say sends line as user and returns the messages it got.
func (d *consoleDriver) say(user, line string) ([]consoleMsg, error) {
	d.marks++
	mark := fmt.Sprintf("/zzend-%d", d.marks)
	if _, err := io.WriteString(d.in, user+"> "+line+"\n"+mark+"\n"); err != nil {
		return nil, fmt.Errorf("write to the console: %w (did it exit? stderr:\n%s)", err, d.stderr.String())
	}
	var got []consoleMsg
	timeout := time.After(60 * time.Second)
	for {
		select {
		case msg, ok := <-d.msgs:
			if !ok {
				return got, fmt.Errorf("the console exited; stderr:\n%s", d.stderr.String())
			}
			if msg.Kind == "error" && strings.Contains(msg.Text, "Unknown command "+mark+".") {
				return got, nil
			}
			got = append(got, msg)
		case <-timeout:
			return got, fmt.Errorf("no answer within a minute to %q", clipLine(line))
		}
	}
}

// close ends the input and returns the exit status.
func (d *consoleDriver) close() (int, error) {
	d.in.Close()
	for range d.msgs {
	}
	select {
	case code := <-d.done:
		return code, nil
	case <-time.After(60 * time.Second):
		return -1, fmt.Errorf("the console did not exit at the end of its input")
	}
}

func clipLine(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// faultTag marks the prompts of an upstream case, so the simulator knows
// which fault to answer with.
func faultTag(name string) string { return "(bad-input " + name + ")" }

var faultTagRe = regexp.MustCompile(`\(bad-input ([A-Za-z0-9._-]+)\)`)

func TestBadInputs(t *testing.T) {
	cases := loadBadCases(t)
	counts := map[string]int{}
	for _, c := range cases {
		counts[c.kind]++
	}
	t.Logf("bad-input corpus: %d cases %v", len(cases), counts)
	if len(cases) < 60 {
		t.Errorf("the corpus holds %d cases; issue 8 asks for at least 60", len(cases))
	}
	for _, k := range badKinds {
		if counts[k] == 0 {
			t.Errorf("no %s cases", k)
		}
	}

	t.Run("console", func(t *testing.T) {
		t.Parallel()
		var con []badCase
		for _, c := range cases {
			if c.kind != "config" && c.kind != "http" && c.kind != "discord" {
				con = append(con, c)
			}
		}
		runConsoleCases(t, con)
	})
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		base, secret := startSlackHTTP(t)
		for _, c := range cases {
			if c.kind == "http" {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					runHTTPCase(t, c, strings.TrimPrefix(base, "http://"), secret)
				})
			}
		}
	})
	t.Run("discord", func(t *testing.T) {
		t.Parallel()
		var dc []badCase
		for _, c := range cases {
			if c.kind == "discord" {
				dc = append(dc, c)
			}
		}
		runDiscordCases(t, dc)
	})
	t.Run("config", func(t *testing.T) {
		t.Parallel()
		for _, c := range cases {
			if c.kind == "config" {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					runConfigCase(t, c)
				})
			}
		}
	})
}

// runConsoleCases runs the command, attachment and upstream cases through
// one console process, then checks the ledger.
func runConsoleCases(t *testing.T, cases []badCase) {
	faults := map[string]badCase{}
	for _, c := range cases {
		if c.fault != nil {
			faults[c.name] = c
		}
	}
	sim := openroutertest.MustStart(t, openroutertest.Options{FaultFunc: func(r *openroutertest.Request) *openroutertest.Fault {
		for i := len(r.Messages) - 1; i >= 0; i-- {
			if r.Messages[i].Role != bot.RoleUser {
				continue
			}
			m := faultTagRe.FindStringSubmatch(r.Messages[i].Content)
			if m == nil {
				return nil
			}
			c, ok := faults[m[1]]
			if !ok || (c.faultModel != "" && c.faultModel != r.Model) {
				return nil
			}
			f := *c.fault
			return &f
		}
		return nil
	}})

	dir := t.TempDir()
	cfg := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(cfg, []byte(badConsoleConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "orchat.db")
	d := startConsole(t, "--config", cfg, "--db", db, "--upstream", sim.URL())

	for _, c := range cases {
		ok := t.Run(c.id(), func(t *testing.T) {
			fdir := filepath.Join(dir, "files", c.kind, c.name)
			if err := os.MkdirAll(fdir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, spec := range c.files {
				if err := makeFile(fdir, spec); err != nil {
					t.Fatal(err)
				}
			}
			var got []consoleMsg
			compare := "c00000000"
			for _, line := range strings.Split(c.body, "\n") {
				line = strings.NewReplacer("{dir}", fdir, "{fault}", faultTag(c.name), "{compare}", compare).Replace(expand(line))
				msgs, err := d.say(c.user, line)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if m.CompareID != "" && m.Kind == "compare" {
						compare = m.CompareID
					}
				}
				got = append(got, msgs...)
			}
			c.want = slices.Clone(c.want)
			for i, w := range c.want {
				c.want[i] = strings.ReplaceAll(w, "{dir}", fdir)
			}
			checkMessages(t, c, got)
		})
		if !ok && strings.Contains(d.stderr.String(), "panic") {
			t.Fatalf("the console panicked; stderr:\n%s", d.stderr.String())
		}
	}

	code, err := d.close()
	if err != nil {
		t.Fatal(err)
	}
	stderr := d.stderr.String()
	if code != exitOK {
		t.Fatalf("the console exited with %d at the end of its input; stderr:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "level=ERROR") {
		t.Errorf("the console logged a panic or an error:\n%s", stderr)
	}

	st, err := accounts.Open(db, accounts.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for _, c := range cases {
		if c.charged == "" {
			continue
		}
		id := bot.Identity("console:" + c.user)
		rows, err := st.History(ctx, id, 1000)
		if err != nil {
			t.Errorf("%s: history of %s: %v", c.id(), id, err)
			continue
		}
		charges := 0
		for _, e := range rows {
			if e.Kind == bot.EntryCharge {
				charges++
			}
		}
		b, err := st.Balance(ctx, id)
		if err != nil {
			t.Errorf("%s: balance of %s: %v", c.id(), id, err)
			continue
		}
		switch {
		case b.Held != 0:
			t.Errorf("%s: %s still has %d tokens held after the run", c.id(), id, b.Held)
		case c.charged == "none" && charges > 0:
			t.Errorf("%s: a failed call was charged: %d charge rows for %s", c.id(), charges, id)
		case c.charged == "some" && charges == 0:
			t.Errorf("%s: the answer was not charged at all", c.id())
		}
	}

	if code, out, errOut := runCLI(t, nil, "ledger", "verify", "--db", db); code != exitOK {
		t.Fatalf("ledger verify after the corpus: exit %d\n%s%s", code, out, errOut)
	}
}

// checkMessages asserts that a case got its clear message and no apology
// for an internal error.
func checkMessages(t *testing.T, c badCase, got []consoleMsg) {
	t.Helper()
	if os.Getenv("BADINPUT_DUMP") != "" {
		t.Logf("messages:\n%s", dumpMsgs(got))
	}
	var all strings.Builder
	for _, m := range got {
		all.WriteString(m.all() + "\n")
		if m.Kind == "not-json" {
			t.Errorf("stdout line is not JSON: %q", clipLine(m.Text))
		}
		if strings.Contains(m.Text, "something went wrong on our side") {
			t.Errorf("an internal error instead of a clear message: %q", m.Text)
		}
	}
	for _, w := range c.want {
		if !strings.Contains(all.String(), w) {
			t.Errorf("want a message containing %q; got:\n%s", w, dumpMsgs(got))
		}
	}
	if c.wantKind != "" {
		i := slices.IndexFunc(got, func(m consoleMsg) bool { return strings.Contains(m.all(), c.want[0]) })
		if i >= 0 && got[i].Kind != c.wantKind {
			t.Errorf("the message with %q is a %s, want a %s", c.want[0], got[i].Kind, c.wantKind)
		}
	}
}

func dumpMsgs(msgs []consoleMsg) string {
	var b strings.Builder
	for _, m := range msgs {
		text := m.all()
		if len(text) > 400 {
			text = text[:400] + "…"
		}
		fmt.Fprintf(&b, "  [%s/%s] %s\n", m.Kind, m.Status, strings.TrimSpace(text))
	}
	return b.String()
}

// runConfigCase runs orchat with the case's config file: it must refuse
// to start with the expected message and exit status, and not panic.
func runConfigCase(t *testing.T, c badCase) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "orchat.toml")
	if err := os.WriteFile(cfg, []byte(expand(c.body)), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "orchat.db")
	args := c.args
	if args == "" {
		args = "--config {config} ledger verify --db {db}"
	}
	argv := strings.Fields(strings.NewReplacer("{config}", cfg, "{db}", db, "{dir}", dir).Replace(args))
	var out bytes.Buffer
	errb := &stacktest.SyncBuffer{}
	var stdin io.Reader = strings.NewReader("")
	if c.stdin == "null" {
		null, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer null.Close()
		stdin = null
	}
	m := &Main{Stdin: stdin, Stdout: &out, Stderr: errb, Getenv: func(k string) string { return c.env[k] }}
	code := m.Run(context.Background(), argv)
	if err := m.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	stderr := errb.String()
	if code != c.exit {
		t.Errorf("exit status %d, want %d; stderr: %s", code, c.exit, stderr)
	}
	for _, w := range c.want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, stderr)
		}
	}
	if strings.Contains(stderr, "panic") {
		t.Errorf("panic: %s", stderr)
	}
	for _, sec := range c.secrets {
		if strings.Contains(stderr+out.String(), sec) {
			t.Errorf("the secret %q was shown:\n%s", sec, stderr)
		}
	}
	if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines > 2 {
		t.Errorf("a bad config should get a short message, got %d lines:\n%s", lines+1, stderr)
	}
}

// runHTTPCase sends an http case's raw request to Slack's endpoint of a
// running bot (Slack's HTTP mode) and checks the answer, read until the
// bot closes the connection. The body's head lines get CRLF endings,
// Connection: close (unless the case stalls) and, unless given,
// Content-Length; sign adds Slack's signature headers.
func runHTTPCase(t *testing.T, c badCase, addr, secret string) {
	head, body, sep := strings.Cut(expand(c.body), "\n\n")
	lines := strings.Split(strings.TrimRight(head, "\n"), "\n")
	has := func(name string) bool {
		for _, l := range lines {
			if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
				return true
			}
		}
		return false
	}
	complete := sep || !c.stall // a stalled case without a blank line: the headers never end
	if complete && !has("Content-Length") {
		lines = append(lines, "Content-Length: "+strconv.Itoa(len(body)))
	}
	if !c.stall {
		lines = append(lines, "Connection: close")
	}
	if c.sign == "yes" || c.sign == "stale" {
		at := time.Now()
		if c.sign == "stale" {
			at = at.Add(-10 * time.Minute)
		}
		stamp := strconv.FormatInt(at.Unix(), 10)
		lines = append(lines, "X-Slack-Request-Timestamp: "+stamp, "X-Slack-Signature: v0="+hex.EncodeToString(slack.Sign(secret, stamp, []byte(body))))
	}
	raw := strings.Join(lines, "\r\n")
	if complete {
		raw += "\r\n\r\n" + body
	}
	got := closedByServer(t, addr, raw)
	for _, w := range c.want {
		if w == "" && got != "" {
			t.Errorf("want the connection closed with no answer, got:\n%s", got)
		}
		if !strings.Contains(got, w) {
			t.Errorf("the answer does not say %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "panic") {
		t.Errorf("panic: %s", got)
	}
}
