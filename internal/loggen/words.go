package loggen

// The word lists below give generated host names, page slugs and search
// terms the shape of a Dutch webhosting customer base. Compression benchmarks
// depend on that shape: real logs repeat a modest vocabulary in many
// combinations, which random strings would not.

var trades = []string{
	"bakkerij", "kapsalon", "garage", "tandarts", "fietsenwinkel", "bloemist", "slagerij", "makelaar",
	"advocaat", "fysiotherapie", "camping", "hotel", "restaurant", "cafe", "schilder", "loodgieter",
	"dierenarts", "huisarts", "rijschool", "autobedrijf", "installatiebedrijf", "hovenier", "timmerbedrijf",
	"boekhandel", "kinderopvang", "yogastudio", "sportschool", "fotografie", "bouwbedrijf", "webdesign",
	"notaris", "accountant", "drukkerij", "kringloop", "wijnhandel", "koffiebar", "pizzeria", "snackbar",
	"schoonheidssalon", "pedicure", "muziekschool", "dansschool", "stichting", "vereniging", "voetbalclub",
}

var surnames = []string{
	"jansen", "de-vries", "van-dijk", "bakker", "visser", "smit", "meijer", "de-boer", "mulder", "de-groot",
	"bos", "vos", "peters", "hendriks", "van-leeuwen", "dekker", "brouwer", "de-wit", "dijkstra", "smits",
	"de-graaf", "van-der-meer", "van-der-linden", "kok", "jacobs", "de-haan", "vermeulen", "van-den-berg",
	"van-der-heijden", "schouten", "van-beek", "willems", "van-vliet", "van-de-ven", "hoekstra", "maas",
	"verhoeven", "koster", "van-dam", "prins", "blom", "huisman", "peeters", "de-jong", "van-wijk",
}

var cities = []string{
	"amsterdam", "rotterdam", "utrecht", "eindhoven", "groningen", "tilburg", "almere", "breda", "nijmegen",
	"apeldoorn", "haarlem", "arnhem", "enschede", "amersfoort", "zaandam", "den-bosch", "zwolle", "leiden",
	"maastricht", "dordrecht", "ede", "alkmaar", "delft", "deventer", "helmond", "venlo", "leeuwarden",
	"hilversum", "hengelo", "purmerend", "roosendaal", "schiedam", "lelystad", "gouda", "vlaardingen",
}

var subdomains = []string{"blog", "shop", "webmail", "m", "mail", "nieuws", "agenda", "intranet", "dev", "staging", "winkel", "portal"}

var otherTLDs = []string{".com", ".eu", ".be", ".de", ".org", ".net", ".shop", ".online", ".info", ".frl", ".amsterdam"}

var slugWords = []string{
	"nieuws", "over-ons", "contact", "diensten", "prijzen", "openingstijden", "team", "vacatures", "blog",
	"producten", "aanbiedingen", "reserveren", "route", "veelgestelde-vragen", "privacyverklaring",
	"algemene-voorwaarden", "cookiebeleid", "werkwijze", "projecten", "referenties", "galerij", "agenda",
	"zomer", "winter", "nieuwe", "collectie", "tips", "voor", "het", "de", "een", "en", "van", "met", "in",
	"onze", "beste", "gratis", "workshop", "open-dag", "kerst", "pasen", "recept", "brood", "taart",
	"fiets", "onderhoud", "apk", "behandeling", "afspraak", "kosten", "ervaringen", "review", "2024", "2025",
	"2026", "handleiding", "checklist", "stappenplan", "update", "verhuizing", "opening", "jubileum",
}

var searchWords = []string{
	"openingstijden", "prijs", "afspraak", "brood", "taart", "fiets", "band", "ketting", "knippen", "kleuren",
	"caf%C3%A9", "cr%C3%A8me", "appeltaart", "glutenvrij", "vegan", "cadeaubon", "bezorgen", "retour",
	"maat", "zwart", "wit", "rood", "goedkoop", "aanbieding", "korting", "%22gratis+verzending%22",
	"contact", "vacature", "parkeren", "elektrische+fiets", "onderhoud", "reparatie",
}

var productWords = []string{
	"damesfiets", "herenfiets", "e-bike", "kinderfiets", "fietsslot", "fietstas", "koplamp", "shampoo",
	"conditioner", "haarlak", "verjaardagstaart", "croissant", "zuurdesembrood", "boeket-rozen", "tulpen",
	"rode-wijn", "witte-wijn", "koffiebonen", "espressomachine", "t-shirt", "hoodie", "sneakers", "jas",
	"pet", "sokken", "mok", "poster", "kaars", "vaas", "plantenpot", "cadeaubon", "gereedschapsset",
}

var themes = []string{
	"astra", "divi", "flatsome", "generatepress", "hello-elementor", "twentytwentyfour", "twentytwentythree",
	"oceanwp", "avada", "enfold", "salient", "kadence", "blocksy", "neve", "betheme",
}

var wpVersions = []string{"6.4.2", "6.4.3", "6.5.2", "6.5.5", "6.6.1", "6.6.2", "6.7.1", "6.7.2", "6.8.1"}

var plugins = []struct{ name, asset, ver string }{
	{"elementor", "assets/css/frontend.min.css", "3.18.3"},
	{"elementor", "assets/js/frontend.min.js", "3.18.3"},
	{"woocommerce", "assets/js/frontend/cart-fragments.min.js", "8.4.0"},
	{"woocommerce", "assets/css/woocommerce.css", "8.4.0"},
	{"contact-form-7", "includes/css/styles.css", "5.8.4"},
	{"contact-form-7", "includes/swv/js/index.js", "5.8.4"},
	{"wordpress-seo", "css/dist/adminbar-2220.css", "22.0"},
	{"cookie-law-info", "lite/frontend/js/script.min.js", "3.1.7"},
	{"gutenberg", "build/block-library/style.css", "17.3.0"},
	{"revslider", "public/assets/js/rbtools.min.js", "6.6.18"},
	{"wp-rocket", "assets/js/lazyload/17.8.3/lazyload.min.js", "3.15.6"},
	{"gravityforms", "assets/css/dist/theme.min.css", "2.8.1"},
}

// probes are what vulnerability scanners ask every host for. Some contain
// the quotes and backslashes that log escaping must survive.
var probes = []string{
	"/wp-login.php", "/xmlrpc.php", "/.env", "/.git/config", "/wp-admin/", "/wp-admin/setup-config.php",
	"/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php", "/phpmyadmin/", "/pma/",
	"/admin/", "/administrator/", "/.aws/credentials", "/config.php.bak", "/wp-config.php.bak", "/backup.zip",
	"/.DS_Store", "/server-status", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
	"/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh",
	`/index.php?s=/Index/\think\app/invokefunction&function=call_user_func_array&vars[0]=md5&vars[1][]=HelloThinkPHP21`,
	"/?author=1", "/wp-json/wp/v2/users", "/?q=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
	`/search?q="><script>alert(document.domain)</script>`, "/actuator/health", "/solr/admin/info/system?wt=json",
	"/boaform/admin/formLogin", "/HNAP1/", "/owa/auth/logon.aspx",
	"/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession", "/.well-known/security.txt",
	"/wp-includes/wlwmanifest.xml", "/xmlrpc.php?rsd", "/wp-content/debug.log", "/.env.production",
	"/api/.env", "/laravel/.env", "/telescope/requests", "/_ignition/execute-solution",
	"/index.php?id=1%27%20AND%201%3D1--%20-", "/index.php?id=1'", "/shell.php", "/wso.php", "/alfa.php",
	"/wp-content/themes/twentytwentyone/404.php", "/.vscode/sftp.json", "/info.php", "/phpinfo.php",
	"/wp-login.php?action=register", "/user/login", "/magento_version", "/.svn/entries",
}
