// Package loggen generates realistic, deterministic access-log records for
// tests and benchmarks.
//
// Compression and search benchmarks are only meaningful on data shaped like
// real traffic: a few popular sites and many quiet ones, visitors who come
// back with the same browser, page views followed by their assets, crawlers,
// and scanners probing every host for /wp-login.php and /.env. The generator
// models exactly that with Zipf popularity over precomputed tables, so the
// same seed always yields the same records and generation stays far faster
// than any consumer.
package loggen

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/retentiond/retentiond/internal/record"
)

// Options configures a Generator. Zero fields take the documented defaults.
type Options struct {
	// Seed selects the data set; the same options always produce the same records.
	Seed int64
	// Start is the first UTC day; default 2026-01-01. It is truncated to midnight UTC.
	Start time.Time
	// Days is the number of days the records spread over, [Start, Start+Days); default 1.
	Days int
	// Total is how many records Next produces before Done; default 1_000_000.
	// Timestamps spread evenly with jitter over the days and never decrease.
	Total int
	// Vhosts is the number of distinct sites, with Zipf popularity; default 5000.
	Vhosts int
	// UserAgents is the number of distinct user agents, with Zipf popularity; default 1500.
	UserAgents int
	// Visitors is the number of distinct visitors (client IPs, about a quarter
	// IPv6), with Zipf repeat visits; default 100_000. A visitor mostly keeps
	// its user agent.
	Visitors int
}

func (o *Options) defaults() {
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	o.Start = record.Day(o.Start)
	if o.Days <= 0 {
		o.Days = 1
	}
	if o.Total <= 0 {
		o.Total = 1_000_000
	}
	if o.Vhosts <= 0 {
		o.Vhosts = 5000
	}
	if o.UserAgents <= 0 {
		o.UserAgents = 1500
	}
	if o.Visitors <= 0 {
		o.Visitors = 100_000
	}
}

// Site kinds shape the page and asset sets.
const (
	kindWordPress = iota
	kindShop
	kindStatic
)

// site is one virtual host with its page and asset tables, built on first
// use from a seed of its own so that laziness does not change the output.
type site struct {
	domain string
	kind   int
	pages  []string // by popularity
	assets []string // in the order a page loads them
	images []string
	pageZ  *rand.Zipf
}

// visitor is one client. Its properties are fixed for the whole data set.
type visitor struct {
	ip    netip.Addr
	class uint8
	ua    uint16 // index into the class's user-agent table
}

// session is one visit in progress: a visitor working through a site.
type session struct {
	visitor   int32
	site      int32
	ua        string
	pages     int // page views left
	assets    int // assets left for the current page view
	assetPos  int
	firstPage bool
}

// activeSessions is how many visits interleave, as on a busy server.
const activeSessions = 64

// Generator produces records. It is not safe for concurrent use.
type Generator struct {
	opts     Options
	rng      *rand.Rand
	seed     uint64
	n        int     // records produced
	stepMs   float64 // milliseconds per record
	lastMs   int64
	endMs    int64
	domains  []string
	sites    []*site
	siteZ    *rand.Zipf
	visitors []visitor
	visitorZ *rand.Zipf
	uas      [numClasses][]string
	uaZ      [numClasses]*rand.Zipf
	sessions [activeSessions]session
}

// New builds a generator and its tables. Building takes a few milliseconds
// for the default sizes; site page tables are filled lazily.
func New(opts Options) *Generator {
	opts.defaults()
	seed := uint64(opts.Seed)
	g := &Generator{
		opts: opts,
		rng:  rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		seed: seed,
	}
	span := int64(opts.Days) * 86_400_000
	g.stepMs = float64(span) / float64(opts.Total)
	g.lastMs = opts.Start.UnixMilli()
	g.endMs = g.lastMs + span

	tr := rand.New(rand.NewPCG(seed, 1))
	g.domains = buildDomains(tr, opts.Vhosts)
	g.sites = make([]*site, opts.Vhosts)
	g.siteZ = rand.NewZipf(g.rng, 1.1, 2, uint64(opts.Vhosts-1))

	nUA := max(opts.UserAgents, numClasses)
	nCrawler := max(1, nUA*7/100)
	nTool := max(1, nUA*8/100)
	g.uas[classHuman] = buildUAs(tr, humanUAs, nUA-nCrawler-nTool)
	g.uas[classCrawler] = buildUAs(tr, crawlerUAs, nCrawler)
	g.uas[classTool] = buildUAs(tr, toolUAs, nTool)
	for c := range g.uas {
		g.uaZ[c] = rand.NewZipf(tr, 1.2, 1, uint64(len(g.uas[c])-1))
	}

	g.visitors = make([]visitor, opts.Visitors)
	seen := make(map[netip.Addr]bool, opts.Visitors)
	for i := range g.visitors {
		v := &g.visitors[i]
		switch x := tr.IntN(100); {
		case x < 88:
			v.class = classHuman
		case x < 94:
			v.class = classCrawler
		default:
			v.class = classTool
		}
		for {
			v.ip = randomIP(tr)
			if !seen[v.ip] {
				break
			}
		}
		seen[v.ip] = true
		v.ua = uint16(g.uaZ[v.class].Uint64())
	}
	// Visitor popularity must not line up with visitor class, or the most
	// frequent visitors would all be alike.
	g.visitorZ = rand.NewZipf(g.rng, 1.05, 4, uint64(opts.Visitors-1))
	for i := range g.sessions {
		g.newSession(&g.sessions[i])
	}
	return g
}

// Done reports whether Total records have been produced.
func (g *Generator) Done() bool { return g.n >= g.opts.Total }

// Next returns the next record. Records are normalised (record.Normalize
// accepts them unchanged) and their times never decrease. After Done, Next
// keeps producing records at the last millisecond of the range.
func (g *Generator) Next() record.Record {
	// Record i falls in [Start + i*step, Start + (i+1)*step): even spread,
	// random jitter, and never a decrease.
	ms := g.opts.Start.UnixMilli() + int64((float64(g.n)+g.rng.Float64())*g.stepMs)
	ms = min(max(ms, g.lastMs), g.endMs-1)
	g.lastMs = ms
	g.n++

	s := &g.sessions[g.rng.IntN(activeSessions)]
	if s.pages <= 0 && s.assets <= 0 {
		g.newSession(s)
	}
	v := &g.visitors[s.visitor]
	st := g.site(int(s.site))
	var path string
	switch {
	case v.class == classTool:
		s.pages--
		path = g.probe(st)
	case s.assets > 0:
		s.assets--
		path = g.asset(st, s)
	default:
		s.pages--
		path = g.page(st, v.class, s)
	}
	return record.Record{
		Time:      time.UnixMilli(ms).UTC(),
		Domain:    st.domain,
		Path:      path,
		UserAgent: s.ua,
		IP:        v.ip,
	}
}

func (g *Generator) newSession(s *session) {
	vi := int32(g.visitorZ.Uint64())
	v := &g.visitors[vi]
	*s = session{visitor: vi, firstPage: true}
	s.ua = g.uas[v.class][v.ua]
	if g.rng.IntN(20) == 0 {
		// Now and then a visitor shows up with another browser (an update,
		// a second device behind the same address).
		s.ua = g.uas[v.class][g.uaZ[v.class].Uint64()]
	}
	switch v.class {
	case classHuman:
		s.site = int32(g.siteZ.Uint64())
		s.pages = 1 + geometric(g.rng, 3)
	case classCrawler:
		s.site = int32(g.siteZ.Uint64())
		s.pages = 1 + geometric(g.rng, 10)
	default:
		// Scanners spread evenly over every host they can find.
		s.site = int32(g.rng.IntN(len(g.domains)))
		s.pages = 1 + geometric(g.rng, 6)
	}
}

// geometric returns a count with the given mean, for session lengths.
func geometric(r *rand.Rand, mean int) int {
	n := 0
	for r.IntN(mean+1) != 0 {
		n++
	}
	return n
}

func (g *Generator) page(st *site, class uint8, s *session) string {
	var p string
	if class == classCrawler && s.firstPage && g.rng.IntN(3) == 0 {
		p = []string{"/robots.txt", "/sitemap.xml", "/sitemap_index.xml", "/ads.txt"}[g.rng.IntN(4)]
	} else {
		p = st.pages[st.pageZ.Uint64()]
	}
	if class == classHuman {
		if s.firstPage {
			s.assets = min(len(st.assets), 2+g.rng.IntN(len(st.assets)))
		} else {
			// The browser cache keeps css and js; new pages load new images.
			s.assets = g.rng.IntN(4)
			s.assetPos = len(st.assets)
		}
	}
	s.firstPage = false
	return g.decorate(st, p)
}

func (g *Generator) asset(st *site, s *session) string {
	if s.assetPos < len(st.assets) {
		s.assetPos++
		return st.assets[s.assetPos-1]
	}
	return st.images[g.rng.IntN(len(st.images))]
}

func (g *Generator) probe(st *site) string {
	if g.rng.IntN(4) == 0 {
		// Scanners also fetch the front page and a few real pages.
		return st.pages[st.pageZ.Uint64()%uint64(min(len(st.pages), 5))]
	}
	return probes[g.rng.IntN(len(probes))]
}

// decorate adds the query strings real page views carry: campaign tags,
// click identifiers, site search, pagination and the odd very long one.
func (g *Generator) decorate(st *site, p string) string {
	x := g.rng.IntN(1000)
	sep := "?"
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			sep = "&"
			break
		}
	}
	switch {
	case x < 40:
		src := []string{"facebook", "instagram", "newsletter", "google", "linkedin", "tiktok"}[g.rng.IntN(6)]
		med := []string{"social", "email", "cpc", "paid_social"}[g.rng.IntN(4)]
		camp := slugWords[g.rng.IntN(len(slugWords))] + "-" + strconv.Itoa(2024+g.rng.IntN(3))
		return p + sep + "utm_source=" + src + "&utm_medium=" + med + "&utm_campaign=" + camp
	case x < 60:
		return p + sep + "fbclid=IwAR" + g.token(60+g.rng.IntN(30))
	case x < 75:
		return p + sep + "gclid=" + g.token(80+g.rng.IntN(20))
	case x < 100:
		terms := searchWords[g.rng.IntN(len(searchWords))]
		for k := g.rng.IntN(3); k > 0; k-- {
			terms += "+" + searchWords[g.rng.IntN(len(searchWords))]
		}
		if st.kind == kindShop {
			return "/zoeken?q=" + terms
		}
		return "/?s=" + terms
	case x < 130 && st.kind == kindShop:
		return p + sep + []string{"orderby=price", "orderby=popularity", "page=2", "page=3", "filter_kleur=zwart", "add-to-cart=" + strconv.Itoa(100+g.rng.IntN(9000))}[g.rng.IntN(6)]
	case x < 140:
		return p + sep + "id=" + strconv.Itoa(1+g.rng.IntN(5000))
	case x < 142:
		// Rare, very long query strings (tracking payloads, SSO state).
		return p + sep + "data=" + g.token(500+g.rng.IntN(2500))
	}
	return p
}

const tokenChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

func (g *Generator) token(n int) string {
	b := make([]byte, n)
	for i := 0; i < n; {
		x := g.rng.Uint64()
		for k := 0; k < 10 && i < n; k++ {
			b[i] = tokenChars[x&63]
			x >>= 6
			i++
		}
	}
	return string(b)
}

// site returns site i, building its tables on first use.
func (g *Generator) site(i int) *site {
	if s := g.sites[i]; s != nil {
		return s
	}
	r := rand.New(rand.NewPCG(g.seed^0x5eed, uint64(i)+2))
	s := &site{domain: g.domains[i]}
	switch x := r.IntN(10); {
	case x < 6:
		s.kind = kindWordPress
	case x < 8:
		s.kind = kindShop
	default:
		s.kind = kindStatic
	}
	buildPages(r, s)
	s.pageZ = rand.NewZipf(g.rng, 1.3, 1, uint64(len(s.pages)-1))
	g.sites[i] = s
	return s
}

func slug(r *rand.Rand, words int) string {
	b := make([]byte, 0, 40)
	for k := 0; k < words; k++ {
		if k > 0 {
			b = append(b, '-')
		}
		b = append(b, slugWords[r.IntN(len(slugWords))]...)
	}
	if r.IntN(40) == 0 {
		b = append(b, "-caf%C3%A9"...)
	}
	return string(b)
}

func buildPages(r *rand.Rand, s *site) {
	n := 8 + r.IntN(120)
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			s.pages = append(s.pages, p)
		}
	}
	add("/")
	switch s.kind {
	case kindWordPress, kindShop:
		for _, p := range []string{"/contact/", "/over-ons/", "/blog/", "/wp-admin/admin-ajax.php", "/feed/"} {
			add(p)
		}
		if s.kind == kindShop {
			for _, p := range []string{"/winkelmand/", "/afrekenen/", "/mijn-account/", "/winkel/", "/?wc-ajax=get_refreshed_fragments"} {
				add(p)
			}
		}
		for tries := 0; len(s.pages) < n && tries < 4*n; tries++ {
			switch x := r.IntN(10); {
			case x < 3:
				add("/" + slug(r, 1+r.IntN(2)) + "/")
			case x < 6:
				add("/" + strconv.Itoa(2019+r.IntN(8)) + "/" + twoDigit(1+r.IntN(12)) + "/" + slug(r, 2+r.IntN(5)) + "/")
			case x < 7:
				add("/category/" + slug(r, 1) + "/")
			case x < 8:
				add("/?p=" + strconv.Itoa(1+r.IntN(9000)))
			case s.kind == kindShop:
				add("/product/" + productWords[r.IntN(len(productWords))] + "-" + slug(r, 1) + "/")
			default:
				add("/page/" + strconv.Itoa(2+r.IntN(20)) + "/")
			}
		}
		theme := themes[r.IntN(len(themes))]
		ver := wpVersions[r.IntN(len(wpVersions))]
		s.assets = append(s.assets,
			"/wp-content/themes/"+theme+"/style.css?ver="+ver,
			"/wp-includes/css/dist/block-library/style.min.css?ver="+ver,
			"/wp-includes/js/jquery/jquery.min.js?ver=3.7.1",
			"/wp-includes/js/jquery/jquery-migrate.min.js?ver=3.4.1",
		)
		for k := r.IntN(5); k > 0; k-- {
			pl := plugins[r.IntN(len(plugins))]
			s.assets = append(s.assets, "/wp-content/plugins/"+pl.name+"/"+pl.asset+"?ver="+pl.ver)
		}
		s.assets = append(s.assets,
			"/wp-content/themes/"+theme+"/assets/js/main.min.js?ver="+ver,
			"/wp-content/uploads/elementor/css/post-"+strconv.Itoa(r.IntN(3000))+".css?ver="+strconv.Itoa(1700000000+r.IntN(60000000)),
			"/favicon.ico",
		)
		for k := 4 + r.IntN(30); k > 0; k-- {
			y := 2019 + r.IntN(8)
			img := "/wp-content/uploads/" + strconv.Itoa(y) + "/" + twoDigit(1+r.IntN(12)) + "/"
			switch r.IntN(3) {
			case 0:
				img += "IMG_" + strconv.Itoa(y) + twoDigit(1+r.IntN(12)) + twoDigit(1+r.IntN(28)) + "_" + strconv.Itoa(100000+r.IntN(899999))
			case 1:
				img += slug(r, 2)
			default:
				img += productWords[r.IntN(len(productWords))] + "-" + strconv.Itoa(r.IntN(20))
			}
			img += []string{"-300x200.jpg", "-1024x768.jpg", ".jpg", ".png", "-scaled.jpg", ".webp"}[r.IntN(6)]
			s.images = append(s.images, img)
		}
	default:
		for tries := 0; len(s.pages) < n && tries < 4*n; tries++ {
			lang := []string{"", "/nl", "/en"}[r.IntN(3)]
			add(lang + "/" + slug(r, 1+r.IntN(2)) + ".html")
		}
		add("/index.html")
		s.assets = append(s.assets, "/css/style.css", "/js/main.js", "/images/logo.png", "/images/header.jpg", "/favicon.ico")
		for k := 4 + r.IntN(20); k > 0; k-- {
			s.images = append(s.images, "/images/"+slug(r, 1)+"-"+strconv.Itoa(r.IntN(50))+".jpg")
		}
	}
	s.images = append(s.images, s.assets[len(s.assets)-1])
}

func twoDigit(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// buildDomains makes n distinct, plausible virtual host names.
func buildDomains(r *rand.Rand, n int) []string {
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for len(out) < n {
		var d string
		base := trades[r.IntN(len(trades))] + "-" + surnames[r.IntN(len(surnames))]
		switch x := r.IntN(20); {
		case x < 8:
			d = "www." + base + ".nl"
		case x < 12:
			d = base + ".nl"
		case x < 14:
			d = "shop-" + strconv.Itoa(r.IntN(10000)) + ".example.nl"
		case x < 16:
			d = subdomains[r.IntN(len(subdomains))] + "." + base + ".nl"
		case x < 18:
			d = "www." + cities[r.IntN(len(cities))] + "-" + trades[r.IntN(len(trades))] + otherTLDs[r.IntN(len(otherTLDs))]
		default:
			d = cities[r.IntN(len(cities))] + "-" + trades[r.IntN(len(trades))] + strconv.Itoa(r.IntN(100)) + ".nl"
		}
		if seen[d] {
			if len(seen) > 50*n {
				// Unreachable for sane sizes; guarantees termination anyway.
				d = "site-" + strconv.Itoa(len(out)) + ".example.nl"
			} else {
				continue
			}
		}
		seen[d] = true
		out = append(out, d)
	}
	return out
}

// ipv4Prefixes are /16s of large (mostly Dutch) access and cloud networks, so
// that addresses cluster the way real client addresses do.
var ipv4Prefixes = [][2]byte{
	{77, 160}, {77, 161}, {77, 162}, {77, 170}, {84, 24}, {84, 25}, {84, 26}, {84, 80}, {84, 81},
	{86, 80}, {86, 81}, {86, 82}, {86, 83}, {62, 45}, {62, 194}, {145, 53}, {145, 100}, {213, 10},
	{213, 93}, {217, 100}, {217, 120}, {31, 20}, {31, 151}, {94, 208}, {94, 209}, {80, 56}, {80, 57},
	{83, 80}, {83, 85}, {82, 72}, {82, 73}, {82, 168}, {88, 159}, {89, 98}, {92, 108}, {178, 84},
	{185, 220}, {193, 32}, {195, 240}, {66, 249}, {40, 77}, {157, 55}, {207, 46}, {52, 167}, {3, 120},
}

// ipv6Prefixes are /32s of access networks that hand out IPv6.
var ipv6Prefixes = [][4]byte{
	{0x2a, 0x02, 0xa4, 0x40}, {0x2a, 0x02, 0xa4, 0x5a}, {0x2a, 0x02, 0xa2, 0x10}, {0x20, 0x01, 0x1c, 0x00},
	{0x20, 0x01, 0x1c, 0x01}, {0x2a, 0x01, 0x07, 0xc8}, {0x2a, 0x02, 0x58, 0xc0}, {0x2a, 0x10, 0x31, 0x00},
	{0x20, 0x01, 0x09, 0x85}, {0x2a, 0x00, 0x14, 0x50}, {0x26, 0x00, 0x1f, 0x18}, {0x2a, 0x03, 0x28, 0x80},
}

func randomIP(r *rand.Rand) netip.Addr {
	if r.IntN(4) == 0 {
		p := ipv6Prefixes[r.IntN(len(ipv6Prefixes))]
		var a [16]byte
		copy(a[:4], p[:])
		x, y := r.Uint64(), r.Uint64()
		for k := 4; k < 8; k++ {
			a[k] = byte(x >> (8 * k))
		}
		for k := 8; k < 16; k++ {
			a[k] = byte(y >> (8 * (k - 8)))
		}
		if r.IntN(4) == 0 {
			// EUI-64 interface identifiers still show up on older routers.
			a[11], a[12] = 0xff, 0xfe
		}
		return netip.AddrFrom16(a)
	}
	x := r.Uint32()
	if r.IntN(10) < 7 {
		p := ipv4Prefixes[r.IntN(len(ipv4Prefixes))]
		return netip.AddrFrom4([4]byte{p[0], p[1], byte(x >> 8), byte(x)})
	}
	for {
		a := [4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}
		if publicV4(a) {
			return netip.AddrFrom4(a)
		}
		x = r.Uint32()
	}
}

func publicV4(a [4]byte) bool {
	switch {
	case a[0] == 0, a[0] == 10, a[0] == 127, a[0] >= 224,
		a[0] == 169 && a[1] == 254,
		a[0] == 172 && a[1]&0xf0 == 16,
		a[0] == 192 && a[1] == 168,
		a[0] == 100 && a[1]&0xc0 == 64:
		return false
	}
	return a[3] != 0 && a[3] != 255
}
