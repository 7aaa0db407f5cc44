package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/retentiond/retentiond/internal/auth"
	"github.com/retentiond/retentiond/internal/evidence"
	"github.com/retentiond/retentiond/internal/loggen"
	"github.com/retentiond/retentiond/internal/record"
	"github.com/retentiond/retentiond/internal/ui"
)

// The tests in this file drive the investigator console in a real headless
// Chromium (Debian's chromium package) against the real binary. Without
// chromium they skip, unless RTD_TEST_E2E=1 (CI), where they fail.
// RTD_TEST_SCREENSHOTS=DIR also saves screenshots of the main views there
// (docs/console/*.png are made that way).

// Hostile values: attacker-chosen text that must render as text and run
// nothing.
const (
	xssPath = `<img src=x onerror="window.__xss='path'">`
	xssUA   = `<script>window.__xss='ua'</script>`
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("RTD_TEST_E2E") == "1" {
		t.Fatal("chromium not found and RTD_TEST_E2E=1 (apt-get install -y chromium)")
	}
	t.Skip("chromium not installed (apt-get install -y chromium); set RTD_TEST_E2E=1 to make this a failure")
	return ""
}

type consoleEnv struct {
	d     *child
	base  string
	token string
	dl    string // download directory
	shots string // screenshot directory, "" for none
}

// newConsoleEnv starts a daemon with one token (all roles), loads a small
// dataset over the last three days, and returns it.
func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	dir := t.TempDir()
	addr := freePort(t)
	tok, sum, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`data_dir: %s
retention: 2y
listen:
  http: %s
  syslog_udp: ""
  syslog_tcp: ""
storage:
  flush_interval: 1s
auth:
  tokens:
    - {name: alice, sha256: %s, roles: [ingest, search, admin]}
`, filepath.Join(dir, "data"), addr, sum)
	d := startDaemonConfig(t, dir, addr, cfg)
	t.Cleanup(func() { d.stop(syscall.SIGTERM) })
	env := &consoleEnv{d: d, base: "http://" + addr, token: tok, dl: filepath.Join(dir, "downloads"), shots: os.Getenv("RTD_TEST_SCREENSHOTS")}
	os.MkdirAll(env.dl, 0o700)

	now := time.Now().UTC()
	start := record.Day(now.Add(-48 * time.Hour))
	g := loggen.New(loggen.Options{Seed: 3, Start: start, Days: 3, Total: 3000, Vhosts: 40, UserAgents: 30, Visitors: 400})
	var body bytes.Buffer
	add := func(r record.Record) {
		if r.Time.After(now) {
			return
		}
		body.Write(record.AppendNDJSON(nil, &r, record.AppendJSONString))
		body.WriteByte('\n')
	}
	for !g.Done() {
		add(g.Next())
	}
	// The suspect, two neighbours in its /24, and a hostile record.
	for i := 0; i < 60; i++ {
		ts := now.Add(-time.Duration(i) * 47 * time.Minute)
		add(record.Record{Time: ts, Domain: "shop.example.nl", Path: fmt.Sprintf("/account/%d", i), UserAgent: "curl/8.5.0", IP: mustIP("203.0.113.7")})
		if i%3 == 0 {
			add(record.Record{Time: ts.Add(-time.Minute), Domain: "shop.example.nl", Path: "/wp-login.php", UserAgent: "python-requests/2.31", IP: mustIP(fmt.Sprintf("203.0.113.%d", 20+i%2))})
		}
	}
	add(record.Record{Time: now.Add(-3 * time.Hour), Domain: "evil.example", Path: xssPath, UserAgent: xssUA, IP: mustIP("198.51.100.66")})
	req, _ := http.NewRequest("POST", env.base+"/api/v1/ingest", &body)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, b)
	}
	// The case registry enforces cases once tokens exist: open the cases the
	// tests search under, approved by their opener in an emergency (one
	// admin token).
	for _, id := range []string{"INC-42", "INC-7"} {
		env.api(t, "POST", "/api/v1/cases", fmt.Sprintf(`{"id":%q,"title":"Leak at the shop","reason":"browser test","from":%q,"to":%q}`,
			id, now.AddDate(0, 0, -30).Format(time.RFC3339), now.Add(24*time.Hour).Format(time.RFC3339)))
		env.api(t, "POST", "/api/v1/cases/"+id+"/approve", `{"emergency":true,"justification":"browser test"}`)
	}
	return env
}

// api sends an authenticated request and fails the test on a non-2xx answer.
func (env *consoleEnv) api(t *testing.T, method, path, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, env.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+env.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

func mustIP(s string) netip.Addr {
	a, err := record.ParseIP(s)
	if err != nil {
		panic(err)
	}
	return a
}

// browserCtx starts a headless Chromium that saves downloads in env.dl.
func browserCtx(t *testing.T, env *consoleEnv) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The first call starts the browser; it must not carry a timeout.
	yes := true
	if _, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: env.dl, EventsEnabled: &yes,
	}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

type action = chromedp.Action[chromedp.Void]

// step runs actions with a bounded time.
func step(t *testing.T, ctx context.Context, what string, actions ...action) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value, bounded in time.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// js evaluates a JavaScript expression.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, chromedp.Evaluate[T](expr))
}

// run evaluates expr for its effect.
func run(expr string) action {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr)(ctx, tg)
		return err
	})
}

// until polls the JavaScript expression expr until it is true.
func until(expr string) action {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		return err
	})
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// searchDone marks the page, then runs act, then waits for the search it
// starts to finish.
func searchDone(act ...action) action {
	return chromedp.Steps(append(append([]action{run(`document.body.dataset.state = 'armed'`)}, act...),
		until(`document.body.dataset.state === 'done' || document.body.dataset.state === 'error'`))...)
}

func (env *consoleEnv) shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if env.shots == "" {
		return
	}
	time.Sleep(150 * time.Millisecond)
	png := get(t, ctx, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(env.shots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitDownload waits for a finished file named name in the download dir.
func (env *consoleEnv) waitDownload(t *testing.T, name string) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(env.dl, name))
		if err == nil && len(b) > 0 {
			if _, err := os.Stat(filepath.Join(env.dl, name+".crdownload")); os.IsNotExist(err) {
				return b
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	entries, _ := os.ReadDir(env.dl)
	t.Fatalf("download %s did not appear (dir holds %v)", name, entries)
	return nil
}

// signIn fills in the token on the sign-in screen.
func (env *consoleEnv) signIn(t *testing.T, ctx context.Context) {
	t.Helper()
	step(t, ctx, "sign in",
		chromedp.WaitVisible(css(`#signin`)),
		chromedp.SendKeys(css(`#token`), env.token),
		chromedp.Click(css(`#signinForm button[type=submit]`)),
	)
}

func TestConsoleInvestigation(t *testing.T) {
	chromiumPath(t)
	env := newConsoleEnv(t)
	ctx := browserCtx(t, env)

	t.Run("deep link asks sign-in, then the reason, then runs", func(t *testing.T) {
		deep := env.base + "/ui/?" + url.Values{"q": {"ip:203.0.113.7"}, "from": {"-7d"}, "case": {"INC-42"}}.Encode()
		step(t, ctx, "open deep link", chromedp.Navigate(deep))
		env.signIn(t, ctx)
		step(t, ctx, "case gate", chromedp.WaitVisible(css(`#gate`)))
		if v := get(t, ctx, chromedp.Value(css(`#caseId`))); v != "INC-42" {
			t.Fatalf("gate case = %q, want the deep link's INC-42", v)
		}
		env.shot(t, ctx, "gate")
		step(t, ctx, "give reason", searchDone(
			chromedp.SendKeys(css(`#reason`), "leak report 2026-12 from the shop"),
			chromedp.Click(css(`#gateForm button[type=submit]`)),
		), until(`window.__rtd.total != null && window.__rtd.rows.length === window.__rtd.total`))
		banner := get(t, ctx, chromedp.Text(css(`#banner`)))
		state := js[string](t, ctx, `document.body.dataset.state`)
		n := js[int](t, ctx, `window.__rtd.rows.length`)
		ips := js[[]string](t, ctx, `[...new Set(window.__rtd.rows.map(r => r.ip))]`)
		if state != "done" || !strings.Contains(banner, "INC-42") || !strings.Contains(banner, "leak report") {
			t.Fatalf("state %q, banner %q", state, banner)
		}
		if n != 60 || len(ips) != 1 || ips[0] != "203.0.113.7" {
			t.Fatalf("rows %d ips %v, want 60 rows of 203.0.113.7", n, ips)
		}
	})

	t.Run("histogram drawn", func(t *testing.T) {
		buckets := js[int](t, ctx, `Number(document.body.dataset.hist)`)
		painted := js[int](t, ctx, `(() => { const c = document.getElementById('hist'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i+2] > 150 && d[i] < 100) n++; return n; })()`)
		// -7d is drawn per hour: at least 7*24 buckets, and the bars are blue pixels.
		if buckets < 168 || painted < 100 {
			t.Fatalf("histogram: %d buckets, %d bar pixels", buckets, painted)
		}
	})

	t.Run("pivot to the /24", func(t *testing.T) {
		step(t, ctx, "open pivot menu",
			chromedp.Click(css(`#rows .row:first-child span[data-field="ip"]`)),
			chromedp.WaitVisible(css(`#pivot button[data-pivot="net"]`)),
		)
		env.shot(t, ctx, "pivot")
		step(t, ctx, "pivot", searchDone(chromedp.Click(css(`#pivot button[data-pivot="net"]`))),
			until(`window.__rtd.total != null && window.__rtd.rows.length === window.__rtd.total`))
		q := js[string](t, ctx, `window.__rtd.q`)
		ips := js[[]string](t, ctx, `[...new Set(window.__rtd.rows.map(r => r.ip))].sort()`)
		if q != "ip:203.0.113.0/24" || strings.Join(ips, ",") != "203.0.113.20,203.0.113.21,203.0.113.7" {
			t.Fatalf("after pivot: q %q, ips %v", q, ips)
		}
		u := get(t, ctx, chromedp.Location())
		if !strings.Contains(u, "q=ip%3A203.0.113.0%2F24") || strings.Contains(u, "reason") {
			t.Fatalf("URL %q: want the pivoted query and no reason", u)
		}
		env.shot(t, ctx, "search")
	})

	t.Run("export CSV of the whole result", func(t *testing.T) {
		step(t, ctx, "export", run(`delete document.body.dataset.exported`),
			chromedp.Click(css(`#exportCsv`)), until(`!!document.body.dataset.exported`))
		name := js[string](t, ctx, `document.body.dataset.exported`)
		total := js[int](t, ctx, `window.__rtd.total`)
		b := env.waitDownload(t, name)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if lines[0] != "time,domain,path,user_agent,ip" || len(lines)-1 != total || total != 80 {
			t.Fatalf("CSV: header %q, %d rows, total %d (want 80)", lines[0], len(lines)-1, total)
		}
	})

	t.Run("evidence bundle verifies", func(t *testing.T) {
		step(t, ctx, "bundle", chromedp.Click(css(`#exportBundle`)), until(`!!document.body.dataset.bundle`))
		name := js[string](t, ctx, `document.body.dataset.bundle`)
		b := env.waitDownload(t, name)
		res, err := evidence.Verify(bytes.NewReader(b), int64(len(b)), evidence.VerifyOptions{Trusted: daemonKey(t, env)})
		if err != nil || !res.OK() {
			t.Fatalf("verify: %v %+v", err, res)
		}
		m := res.Meta
		if m.Case != "INC-42" || m.Query != "ip:203.0.113.0/24" || m.Records != 80 || m.ExportedBy != "alice" ||
			m.AuditSeq == 0 || len(m.CaseSearches) < 6 {
			t.Fatalf("bundle meta: %+v", m)
		}
		// And the CLI accepts it (exit 0).
		out, err := exec.Command(binary(t), "evidence", "verify", filepath.Join(env.dl, name)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK:") {
			t.Fatalf("retentiond evidence verify: %v\n%s", err, out)
		}
	})

	t.Run("every console search is audited under the case", func(t *testing.T) {
		req, _ := http.NewRequest("GET", env.base+"/api/v1/audit/case?case=INC-42", nil)
		req.Header.Set("Authorization", "Bearer "+env.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans struct {
			Lines []struct {
				Endpoint, Outcome, Token, Reason, Query string
			} `json:"lines"`
		}
		json.NewDecoder(resp.Body).Decode(&ans)
		seen := map[string]bool{}
		for _, l := range ans.Lines {
			if l.Outcome == "allowed" {
				if l.Token != "alice" || l.Reason != "leak report 2026-12 from the shop" {
					t.Fatalf("audit line %+v", l)
				}
				seen[l.Endpoint] = true
			}
		}
		for _, e := range []string{"search", "count", "stats", "histogram", "evidence"} {
			if !seen[e] {
				t.Fatalf("no audited %s under INC-42: %+v", e, ans.Lines)
			}
		}
		step(t, ctx, "history view", chromedp.Click(css(`#nav button[data-view="history"]`)), until(`document.querySelectorAll('#historyTable tbody tr').length > 5`))
		env.shot(t, ctx, "history")
		step(t, ctx, "audit view", chromedp.Click(css(`#nav button[data-view="audit"]`)), until(`document.getElementById('auditStatus').textContent.startsWith('Chain verified')`))
		env.shot(t, ctx, "audit")
		step(t, ctx, "retention view", chromedp.Click(css(`#nav button[data-view="retention"]`)), until(`document.querySelectorAll('#retNumbers dt').length >= 8`))
		env.shot(t, ctx, "retention")
	})

	t.Run("the table is virtualised", func(t *testing.T) {
		step(t, ctx, "everything",
			chromedp.Click(css(`#nav button[data-view="search"]`)),
			chromedp.WaitVisible(css(`#q`)),
			run(`document.getElementById("q").value = ""`),
			searchDone(chromedp.Click(css(`#run`))),
			until(`window.__rtd.total != null && window.__rtd.rows.length === window.__rtd.total`),
			run(`(v => { v.scrollTop = v.scrollHeight })(document.getElementById('viewport'))`),
			chromedp.Sleep(200*time.Millisecond),
		)
		n := js[int](t, ctx, `window.__rtd.rows.length`)
		dom := js[int](t, ctx, `document.querySelectorAll('#rows .row').length`)
		last := js[bool](t, ctx, `[...document.querySelectorAll('#rows .row:not([hidden])')].some(r => Number(r.dataset.index) === window.__rtd.rows.length - 1)`)
		if n < 2000 || dom > 60 || !last {
			t.Fatalf("%d records in %d row elements; last record shown after scrolling to the end: %v", n, dom, last)
		}
	})

	t.Run("a query error is shown at its position", func(t *testing.T) {
		step(t, ctx, "bad query",
			chromedp.Click(css(`#nav button[data-view="search"]`)),
			chromedp.WaitVisible(css(`#q`)),
			run(`document.getElementById("q").value = ""`),
			chromedp.SendKeys(css(`#q`), "domain:shop.example.nl ip:999.1.1.1"),
			searchDone(chromedp.Click(css(`#run`))),
			chromedp.WaitVisible(css(`#qerr`)),
		)
		pre := get(t, ctx, chromedp.TextContent(css(`#qerrText`)))
		want := "domain:shop.example.nl ip:999.1.1.1\n" + strings.Repeat(" ", 23) + "^"
		if pre != want {
			t.Fatalf("error display %q, want %q", pre, want)
		}
	})
}

// daemonKey fetches the published evidence key.
func daemonKey(t *testing.T, env *consoleEnv) []byte {
	t.Helper()
	resp, err := http.Get(env.base + "/api/v1/evidence/key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k struct {
		PublicKey string `json:"public_key"`
	}
	json.NewDecoder(resp.Body).Decode(&k)
	pub, err := evidence.ParsePublic(k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestConsoleHostileRecordRendersAsText(t *testing.T) {
	chromiumPath(t)
	env := newConsoleEnv(t)
	ctx := browserCtx(t, env)
	deep := env.base + "/ui/?" + url.Values{"q": {"domain:evil.example"}, "from": {"-2d"}, "case": {"INC-7"}, "reason": {"xss check"}}.Encode()
	step(t, ctx, "open", chromedp.Navigate(deep))
	env.signIn(t, ctx)
	step(t, ctx, "render", until(`document.body.dataset.state === 'done' && window.__rtd.rows.length === 1`))
	time.Sleep(300 * time.Millisecond) // give an onerror a chance to fire
	xss := js[any](t, ctx, `window.__xss === undefined ? null : window.__xss`)
	path := get(t, ctx, chromedp.TextContent(css(`#rows .row:first-child span[data-field="path"]`)))
	ua := get(t, ctx, chromedp.TextContent(css(`#rows .row:first-child span[data-field="user_agent"]`)))
	top := js[string](t, ctx, `document.querySelector('.top[data-by="path"] .val').textContent`)
	injected := js[int](t, ctx, `document.querySelectorAll('#rows img, #rows script, #tops img, #tops script').length`)
	if xss != nil {
		t.Fatalf("hostile record ran script: window.__xss = %v", xss)
	}
	if path != xssPath || ua != xssUA || top != xssPath || injected != 0 {
		t.Fatalf("path %q, ua %q, top %q, injected elements %d", path, ua, top, injected)
	}
	// The same sink with Trusted Types enforced: assigning HTML throws.
	if !js[bool](t, ctx, `(() => { try { document.body.innerHTML += '<b>x</b>'; return false } catch (e) { return true } })()`) {
		t.Fatal("innerHTML was accepted: the CSP's Trusted Types are not in force")
	}
}

func TestConsoleHeaders(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir, freePort(t))
	defer d.stop(syscall.SIGTERM)
	for _, p := range []string{"/ui/", "/ui/app.js", "/ui/app.css"} {
		resp, err := http.Get("http://" + d.addr + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != ui.CSP ||
			resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
}

// TestConsoleDeepLinkFigure measures the console against a running daemon
// in development mode (RTD_TEST_CONSOLE_URL, e.g. http://127.0.0.1:8080)
// with a deep link (RTD_TEST_CONSOLE_LINK, the part after /ui/?, without
// reason): the time from navigation to the first result row in the table,
// and to the whole page (histogram, count, top values) being done. It is a
// figure for docs/console.md, not a pass/fail check; it skips without the
// variables.
func TestConsoleDeepLinkFigure(t *testing.T) {
	base, link := os.Getenv("RTD_TEST_CONSOLE_URL"), os.Getenv("RTD_TEST_CONSOLE_LINK")
	if base == "" || link == "" {
		t.Skip("set RTD_TEST_CONSOLE_URL and RTD_TEST_CONSOLE_LINK to measure a deep link")
	}
	chromiumPath(t)
	ctx := browserCtx(t, &consoleEnv{dl: t.TempDir()})
	step(t, ctx, "warm up", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(css(`#gate`)))
	start := time.Now()
	step(t, ctx, "deep link", chromedp.Navigate(base+"/ui/?"+link+"&reason=figure"), until(`!!document.body.dataset.firstResult`))
	first := time.Since(start)
	c, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := chromedp.Do(c, until(`document.body.dataset.state === 'done'`)); err != nil {
		t.Fatal(err)
	}
	all := time.Since(start)
	t.Logf("deep link %s: first result row after %v (page's own search-to-first-row %s ms), whole page done after %v; %d rows shown of %v, %s histogram buckets",
		link, first.Round(time.Millisecond), js[string](t, ctx, `document.body.dataset.firstResult`), all.Round(time.Millisecond),
		js[int](t, ctx, `window.__rtd.rows.length`), js[any](t, ctx, `window.__rtd.total`), js[string](t, ctx, `document.body.dataset.hist`))
}
