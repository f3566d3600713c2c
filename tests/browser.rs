//! The site as a reader's browser shows it: the pages `cargo run --bin site` builds, served on a
//! loopback port, loaded in headless Chromium driven through ChromeDriver (WebDriver).
//!
//! On every page: no error in the console, a Run button exactly where the catalogue says, the
//! eye icon revealing the whole program, editable blocks that are editable, pictures that load,
//! links and `#anchors` that lead somewhere, and no sideways scroll on a phone. Once: the search
//! finds the page that teaches `JoinSet`, and the print page holds every page.
//!
//! Debian's `chromium` and `chromium-driver` packages give the browser and its driver; `.ci/run`
//! installs them. Without them this test says it was skipped and why, except in CI (`CI` set),
//! where their absence is a failure.
//!
//! A test binary of its own: the browser takes a core for the length of the test, and the
//! book's other tests, which sleep side by side on the real clock, run before it, not beside it.

// The helpers the book's other tests share; this binary uses a few of them.
#[allow(dead_code)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use io_bound_tokio::{CHAPTERS, EXERCISES, PLAYGROUND_CRATES};
use serde_json::{Value, json};

use common::{binary, read, root, tempfile_path};

/// The path of a program on the `PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A child process killed when this is dropped, however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // It may have ended already: nothing more to do then.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves the files of `dir` over HTTP/1.0 on a loopback port the OS picks, from a thread that
/// lives as long as the test; returns the site's address.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("the port's address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || answer(stream, &dir));
        }
    });
    format!("http://{address}")
}

/// Answers one GET request with the file it names, or 404.
fn answer(mut stream: TcpStream, dir: &Path) {
    let mut request = String::new();
    if BufReader::new(&stream).read_line(&mut request).is_err() {
        return;
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let path = path
        .split(['?', '#'])
        .next()
        .unwrap_or("/")
        .trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    let file = dir.join(&path);
    let (status, body) = match std::fs::read(&file) {
        Ok(body) if !path.contains("..") => ("200 OK", body),
        _ => ("404 Not Found", b"not found".to_vec()),
    };
    let kind = match file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript",
        "css" => "text/css",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "json" => "application/json",
        _ => "application/octet-stream",
    };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The browser may have gone away: nothing to do about it.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// A ChromeDriver command that is no W3C WebDriver one: `POST /session/{id}/{path}`.
#[derive(Debug)]
struct Extension {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Extension {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// Run before each page's own scripts: it notes every error a reader's console would show, and
/// answers the Playground's list of crates the way the Playground does (this machine has no
/// network), offering the crates the book counts on it having.
fn watcher() -> String {
    let crates: Vec<Value> = PLAYGROUND_CRATES
        .iter()
        .map(|id| json!({ "id": id }))
        .collect();
    format!(
        r#"
window.__problems = [];
window.addEventListener('error', event => {{
    const target = event.target;
    if (target && target !== window && (target.src || target.href)) {{
        window.__problems.push('cannot load ' + (target.src || target.href));
    }} else {{
        window.__problems.push('error: ' + event.message);
    }}
}}, true);
window.addEventListener('unhandledrejection', event => {{
    window.__problems.push('unhandled rejection: ' + event.reason);
}});
const consoleError = console.error;
console.error = function (...words) {{
    window.__problems.push('console.error: ' + words.join(' '));
    return consoleError.apply(this, words);
}};
const realFetch = window.fetch;
window.fetch = function (resource, options) {{
    if (String(resource).startsWith('https://play.rust-lang.org/meta/crates')) {{
        const body = JSON.stringify({{ crates: {crates} }});
        return Promise.resolve(new Response(body, {{ headers: {{ 'Content-Type': 'application/json' }} }}));
    }}
    return realFetch.apply(this, arguments);
}};
"#,
        crates = Value::from(crates)
    )
}

/// What one page shows, read in one script once its own scripts have run.
const LOOK: &str = r#"
const done = arguments[arguments.length - 1];
setTimeout(() => {
    const visible = button => !button.hidden && !button.classList.contains('hidden');
    const rust = [...document.querySelectorAll('pre code.language-rust')];
    // The eye icon: show every block's hidden lines, then read what each block holds.
    const eyes = [...document.querySelectorAll('button[title="Show hidden lines"]')];
    eyes.forEach(eye => eye.click());
    const revealed = rust.filter(code => code.querySelector('.boring')).map(code => code.textContent);
    const still_hidden = document.querySelectorAll('code.hide-boring').length;
    const editors = window.editors || [];
    done({
        problems: window.__problems || [],
        run_buttons: [...document.querySelectorAll('.play-button')].filter(visible).length,
        eyes: eyes.length,
        still_hidden: still_hidden,
        // An include that resolved to nothing: an empty listing, or the directive's raw text.
        empty_listings: [...document.querySelectorAll('main pre code')]
            .filter(code => code.textContent.trim() === '').length,
        raw_directives: (document.querySelector('main') || document.body).textContent.includes('{{#'),
        revealed: revealed,
        editable: document.querySelectorAll('code.editable').length,
        writable: editors.filter(editor => !editor.getReadOnly()).length,
        broken_images: [...document.images]
            .filter(image => !(image.complete && image.naturalWidth > 0))
            .map(image => image.src),
        ids: [...document.querySelectorAll('[id]')].map(element => element.id),
        links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    });
}, 50);
"#;

/// Whether a page scrolls sideways, read once its scripts have run.
const WIDTH: &str = r#"
const done = arguments[arguments.length - 1];
setTimeout(() => done({
    scroll: document.documentElement.scrollWidth,
    width: document.documentElement.clientWidth,
}), 20);
"#;

/// A program's text as the eye icon reveals it: no anchor lines, no trailing blanks.
fn as_revealed(text: &str) -> String {
    text.lines()
        .filter(|line| !line.contains("ANCHOR"))
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Every file under `dir` whose name ends with `.extension`, in its subfolders too.
fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder.display()));
        for entry in entries {
            let path = entry.expect("a readable entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == extension) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The pages of the site: every HTML file but mdBook's own (404, print, table of contents).
fn pages(site: &Path) -> Vec<String> {
    let mut pages: Vec<String> = files_under(site, "html")
        .iter()
        .map(|path| {
            path.strip_prefix(site)
                .expect("inside the site")
                .to_string_lossy()
                .into_owned()
        })
        .filter(|page| !["404.html", "print.html", "toc.html"].contains(&page.as_str()))
        .collect();
    pages.sort();
    pages
}

/// The page's markdown source, for a page of the site.
fn source_of(page: &str) -> PathBuf {
    let stem = page.trim_end_matches(".html");
    let stem = if stem == "index" {
        "introduction"
    } else {
        stem
    };
    Path::new("chapters").join(format!("{stem}.md"))
}

/// The programs a page's eye icons may reveal: the whole of each file it includes with
/// `rustdoc_include`, which shows part of a file and hides the rest.
fn included_programs(page: &str) -> Vec<String> {
    let source = source_of(page);
    let folder = source
        .parent()
        .unwrap_or(Path::new("chapters"))
        .to_path_buf();
    read(&source)
        .split("{{#rustdoc_include ")
        .skip(1)
        .filter_map(|rest| rest.split(['}', ':']).next())
        .map(|file| as_revealed(&read(&folder.join(file.trim()))))
        .collect()
}

/// How many Run buttons the catalogue gives a page: `Some(n)` exactly, `None` at least one.
/// A chapter's page has one on each of its listings; an exercise's, on its program alone.
fn run_buttons(page: &str) -> Option<usize> {
    let stem = page.trim_end_matches(".html");
    if let Some(chapter) = CHAPTERS.iter().find(|chapter| chapter.name() == stem) {
        return if chapter.playground { None } else { Some(0) };
    }
    if let Some(exercise) = EXERCISES
        .iter()
        .find(|exercise| stem == format!("exercises/{}", exercise.slug))
    {
        return Some(usize::from(exercise.playground));
    }
    Some(0)
}

/// The chapter's own program, for a chapter's page: one of its eye icons reveals it whole.
fn own_program(page: &str) -> Option<String> {
    let stem = page.trim_end_matches(".html");
    CHAPTERS
        .iter()
        .find(|chapter| chapter.name() == stem)
        .map(|chapter| as_revealed(&read(&chapter.source())))
}

#[test]
fn the_site_works_in_a_browser() {
    let (Some(chromium), Some(driver)) = (on_path("chromium"), on_path("chromedriver")) else {
        let why = "no chromium or chromedriver on the PATH (Debian: apt-get install chromium chromium-driver)";
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser tests need them in CI: {why}"
        );
        // Straight to the terminal: libtest hides what a passing test prints.
        let _ = writeln!(
            std::io::stderr(),
            "\nbrowser: the_site_works_in_a_browser SKIPPED, {why}\n"
        );
        return;
    };
    let site = tempfile_path("site");
    let built = Command::new(binary("site"))
        .arg("--dest")
        .arg(&site)
        .output()
        .expect("the site builder runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let address = serve(site.clone());

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let _driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile_path("chromium-profile");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let problems = runtime.block_on(async {
        let client = connect(port, &chromium, &profile).await;
        let problems = check_every_page(&client, &address, &site).await;
        client.close().await.expect("the session ends");
        problems
    });
    let _ = std::fs::remove_dir_all(&site);
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        problems.is_empty(),
        "the site, in a browser:\n{}",
        problems.join("\n")
    );
}

/// A WebDriver session of a headless Chromium, with `watcher` installed in every page.
async fn connect(port: u16, chromium: &Path, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let started = Instant::now();
    let client = loop {
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities.clone());
        match builder.connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(client) => break client,
            Err(error) if started.elapsed() > Duration::from_secs(20) => {
                panic!("no WebDriver session: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    client
        .issue_cmd(Extension {
            path: "goog/cdp/execute",
            body: json!({
                "cmd": "Page.addScriptToEvaluateOnNewDocument",
                "params": { "source": watcher() },
            }),
        })
        .await
        .expect("the watcher is installed");
    client
}

/// Loads a page and reads it with `script`.
async fn look(client: &Client, url: &str, script: &str) -> Value {
    client
        .goto(url)
        .await
        .unwrap_or_else(|error| panic!("cannot load {url}: {error}"));
    client
        .execute_async(script, Vec::new())
        .await
        .unwrap_or_else(|error| panic!("cannot read {url}: {error}"))
}

async fn check_every_page(client: &Client, address: &str, site: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut links: BTreeSet<(String, String)> = BTreeSet::new();
    client
        .set_window_size(1280, 900)
        .await
        .expect("a desktop window");
    for page in pages(site) {
        let seen = look(client, &format!("{address}/{page}"), LOOK).await;
        let strings = |key: &str| -> Vec<String> {
            seen[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|value| value.as_str().map(String::from))
                .collect()
        };
        let count = |key: &str| seen[key].as_u64().unwrap_or_default();
        for problem in strings("problems") {
            problems.push(format!("{page}: in the console: {problem}"));
        }
        let buttons = count("run_buttons") as usize;
        match run_buttons(&page) {
            None if buttons == 0 => problems.push(format!(
                "{page}: no Run button, though the catalogue gives it one"
            )),
            Some(expected) if buttons != expected => problems.push(format!(
                "{page}: {buttons} Run buttons where the catalogue gives it {expected} \
                 (a listing for a crate the Playground lacks, or a fragment?)"
            )),
            _ => {}
        }
        if count("empty_listings") > 0 {
            problems.push(format!(
                "{page}: {} empty listings (an include that found nothing?)",
                count("empty_listings")
            ));
        }
        if seen["raw_directives"].as_bool() == Some(true) {
            problems.push(format!(
                "{page}: an include's directive shows as text (a missing file?)"
            ));
        }
        if count("still_hidden") > 0 {
            problems.push(format!(
                "{page}: the eye icon left {} listings' lines hidden",
                count("still_hidden")
            ));
        }
        let programs = included_programs(&page);
        let revealed: Vec<String> = strings("revealed")
            .iter()
            .map(|text| as_revealed(text))
            .collect();
        for program in &revealed {
            if !programs.contains(program) {
                let first = program.lines().next().unwrap_or_default().to_string();
                problems.push(format!(
                    "{page}: the eye icon reveals a program that is no whole file the page includes (it starts {first:?})"
                ));
            }
        }
        if let Some(own) = own_program(&page)
            && !revealed.is_empty()
            && !revealed.contains(&own)
        {
            problems.push(format!(
                "{page}: no eye icon reveals the chapter's whole program"
            ));
        }
        if count("editable") != count("writable") {
            problems.push(format!(
                "{page}: {} blocks marked editable, {} editable in the browser",
                count("editable"),
                count("writable")
            ));
        }
        for image in strings("broken_images") {
            problems.push(format!("{page}: the picture {image} does not load"));
        }
        ids.insert(page.clone(), strings("ids").into_iter().collect());
        for link in strings("links") {
            if let Some(inside) = link.strip_prefix(&format!("{address}/")) {
                links.insert((page.clone(), inside.to_string()));
            }
        }
        // The same page on a phone: the prose must not scroll sideways (code blocks and
        // tables scroll inside themselves).
        client
            .set_window_size(390, 844)
            .await
            .expect("a phone's window");
        let width = client
            .execute_async(WIDTH, Vec::new())
            .await
            .expect("the page's width");
        client
            .set_window_size(1280, 900)
            .await
            .expect("a desktop window");
        if let (Some(scroll), Some(width)) = (width["scroll"].as_u64(), width["width"].as_u64())
            && scroll > width
        {
            problems.push(format!(
                "{page}: on a phone, {scroll} px wide in a {width} px screen"
            ));
        }
    }
    check_links(&links, &ids, site, &mut problems);
    check_search(client, address, &mut problems).await;
    check_print_page(client, address, &mut problems).await;
    problems
}

/// Every link inside the site leads to a file of the site, and its `#anchor` to an element there.
fn check_links(
    links: &BTreeSet<(String, String)>,
    ids: &BTreeMap<String, BTreeSet<String>>,
    site: &Path,
    problems: &mut Vec<String>,
) {
    for (page, link) in links {
        let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
        let path = path.split('?').next().unwrap_or_default();
        let path = if path.is_empty() || path.ends_with('/') {
            format!("{path}index.html")
        } else {
            path.to_string()
        };
        if !site.join(&path).is_file() {
            problems.push(format!(
                "{page}: a link to {link}, which is no file of the site"
            ));
            continue;
        }
        if anchor.is_empty() || path == "print.html" {
            continue;
        }
        let anchor = anchor.replace("%20", " ");
        if !ids.get(&path).is_some_and(|ids| ids.contains(&anchor)) {
            problems.push(format!(
                "{page}: a link to {link}, whose #{anchor} is on no element there"
            ));
        }
    }
}

/// The search box, given `JoinSet`, lists the page that teaches it.
async fn check_search(client: &Client, address: &str, problems: &mut Vec<String>) {
    let teaches = CHAPTERS
        .iter()
        .find(|chapter| chapter.teaches.contains("JoinSet"))
        .expect("a chapter teaches JoinSet")
        .name();
    client
        .goto(&format!("{address}/index.html?search=JoinSet"))
        .await
        .expect("the search page loads");
    let started = Instant::now();
    loop {
        let found: Vec<String> = client
            .execute(
                "return [...document.querySelectorAll('#mdbook-searchresults a')].map(a => a.href)",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default();
        if found
            .iter()
            .any(|href| href.contains(&format!("{teaches}.html")))
        {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            problems.push(format!(
                "the search for JoinSet does not list {teaches}: {found:?}"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The print page holds every page of the book: each page's title is one of its headings.
async fn check_print_page(client: &Client, address: &str, problems: &mut Vec<String>) {
    let headings: Vec<String> = serde_json::from_value(
        look(
            client,
            &format!("{address}/print.html"),
            "const done = arguments[arguments.length - 1];
             setTimeout(() => done([...document.querySelectorAll('main h1')].map(h => h.textContent.trim())), 100);",
        )
        .await,
    )
    .unwrap_or_default();
    for page in files_under(&root().join("chapters"), "md") {
        if page.ends_with("SUMMARY.md") || page.to_string_lossy().ends_with(".table.md") {
            continue;
        }
        let text = read(&page);
        let Some(title) = text.lines().find_map(|line| line.strip_prefix("# ")) else {
            continue;
        };
        // mdBook's typography: straight quotes become curly ones.
        let title = title.replace('`', "").replace('\'', "’");
        if !headings.iter().any(|heading| heading == title.trim()) {
            problems.push(format!(
                "print.html has no heading {title:?} ({})",
                page.strip_prefix(root()).unwrap_or(&page).display()
            ));
        }
    }
}
