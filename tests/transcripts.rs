//! Every program output the book shows is a committed transcript in `docs/src/runs/`; this test
//! runs each one's command again and fails when the text no longer matches.
//!
//! A transcript file looks like this:
//!
//! ```text
//! $ cargo run -q -p book-listings --example busy_poll_executor
//! # run at commit 1a2b3c4 on Linux 6.18.44, 2 CPUs (Intel Xeon), 23 GiB; 2026-12-02
//! # keep: polled | woken
//! <the output>
//! ```
//!
//! The first line is the command, run by `sh -c` from the repository's root with stderr merged
//! into stdout, as a reader would see it in a terminal. Then come `#` lines: the stamp (which
//! commit, which machine, when; a `+` after the commit means the run had uncommitted changes on
//! top of it, committed together with the transcript) and optional directives that cut an
//! excerpt out of the output:
//!
//! - `# keep: A | B` keeps only the lines that contain A or B;
//! - `# from: A` drops the lines before the first one containing A;
//! - `# to: B` drops the lines after the first one (at or after `from`) containing B;
//! - `# head: N` keeps the first N lines (applied last);
//! - `# loose`: the committed lines need only appear in order among the fresh ones (for outputs
//!   whose number of lines depends on timing, such as the turn log);
//! - `# needs: TOOL` skips the transcript, saying why, when TOOL is not on this machine;
//! - `# timeout: SECONDS` (default 180).
//!
//! What must match: the words and the shape. Before comparing, every number becomes `#`, a
//! unit after a number is dropped (`12 ms` and `3 µs` are both `#`), runs of spaces become one,
//! and repeated identical lines count once. So a transcript survives another machine's figures,
//! but not a changed message, a lost line or a new one.
//!
//! `STROLL_BLESS=1 cargo test --test transcripts` writes every transcript anew from a fresh run,
//! with a new stamp. `STROLL_RUNS=NAME` limits the test (checking or rewriting) to the
//! transcripts whose file name contains NAME.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One transcript file, parsed.
struct Transcript {
    path: PathBuf,
    command: String,
    /// The directive lines (`# keep: ...` and so on), kept as written for a rewrite.
    directives: Vec<String>,
    /// The output as committed.
    body: Vec<String>,
    keep: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    head: Option<usize>,
    loose: bool,
    needs: Vec<String>,
    timeout: Duration,
}

fn parse(path: &Path) -> Transcript {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let command = first
        .strip_prefix("$ ")
        .unwrap_or_else(|| panic!("{}: the first line must be `$ command`", path.display()))
        .to_string();
    let mut t = Transcript {
        path: path.to_path_buf(),
        command,
        directives: Vec::new(),
        body: Vec::new(),
        keep: Vec::new(),
        from: None,
        to: None,
        head: None,
        loose: false,
        needs: Vec::new(),
        timeout: Duration::from_secs(180),
    };
    let mut in_header = true;
    for line in lines {
        if in_header && line.starts_with("# ") {
            directive(&mut t, line);
        } else {
            in_header = false;
            t.body.push(line.to_string());
        }
    }
    t
}

/// Reads one `#` line of the header: a directive, or the stamp (which is not kept).
fn directive(t: &mut Transcript, line: &str) {
    let rest = &line[2..];
    let (name, value) = rest.split_once(':').unwrap_or((rest, ""));
    let value = value.trim();
    match name.trim() {
        "keep" => t.keep = value.split(" | ").map(|s| s.trim().to_string()).collect(),
        "from" => t.from = Some(value.to_string()),
        "to" => t.to = Some(value.to_string()),
        "head" => t.head = Some(value.parse().expect("head: a number")),
        "loose" => t.loose = true,
        "needs" => t.needs = value.split_whitespace().map(str::to_string).collect(),
        "timeout" => t.timeout = Duration::from_secs(value.parse().expect("timeout: seconds")),
        _ if rest.starts_with("run at commit") => return,
        other => panic!("{}: unknown directive `{other}`", t.path.display()),
    }
    t.directives.push(line.to_string());
}

/// Runs the command; returns its output (stdout and stderr merged), or why it could not run.
fn run(t: &Transcript) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("({}) 2>&1", t.command))
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start sh: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > t.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not finish within {:?}", t.timeout));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(reader.join().unwrap())
}

/// Cuts the excerpt the directives ask for out of a fresh output.
fn excerpt(t: &Transcript, output: &str) -> Vec<String> {
    let mut lines: Vec<String> = output.lines().map(str::to_string).collect();
    if let Some(from) = &t.from {
        let start = lines.iter().position(|l| l.contains(from.as_str()));
        lines = start.map(|s| lines.split_off(s)).unwrap_or_default();
    }
    if let Some(to) = &t.to {
        if let Some(end) = lines.iter().position(|l| l.contains(to.as_str())) {
            lines.truncate(end + 1);
        }
    }
    if !t.keep.is_empty() {
        lines.retain(|l| t.keep.iter().any(|k| l.contains(k.as_str())));
    }
    if let Some(head) = t.head {
        lines.truncate(head);
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

/// A line's words and shape: numbers become `#`, a unit right after a number goes, runs of
/// spaces become one.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|&n| n.is_ascii_digit() || n == '.' || n == ',' || n == '_')
            {
                chars.next();
            }
            out.push('#');
            drop_unit(&mut chars);
        } else if c.is_whitespace() {
            while chars.peek().is_some_and(|n| n.is_whitespace()) {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Skips a unit of time or size written right after a number (`ms`, ` µs`, `KiB`...).
fn drop_unit(chars: &mut std::iter::Peekable<std::str::Chars>) {
    const UNITS: [&str; 12] = [
        "ns", "µs", "us", "ms", "s", "KiB", "MiB", "GiB", "kB", "KB", "MB", "B",
    ];
    let rest: String = chars.clone().take(5).collect();
    let spaced = rest.strip_prefix(' ').unwrap_or(&rest);
    for unit in UNITS {
        if let Some(after) = spaced.strip_prefix(unit) {
            if !after.starts_with(|c: char| c.is_alphanumeric()) {
                let skip = unit.chars().count() + (rest.len() - spaced.len());
                for _ in 0..skip {
                    chars.next();
                }
                return;
            }
        }
    }
}

/// The shapes of a list of lines, repeated identical lines counted once.
fn shapes(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let s = shape(line);
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

/// Whether `part` appears in `whole` in order, not necessarily side by side.
fn in_order(part: &[String], whole: &[String]) -> bool {
    let mut rest = whole.iter();
    part.iter().all(|p| rest.any(|w| w == p))
}

/// The first difference between two lists of shapes, for the failure message.
fn first_difference(committed: &[String], fresh: &[String]) -> String {
    for (i, (c, f)) in committed.iter().zip(fresh).enumerate() {
        if c != f {
            return format!("line {}: committed `{c}`, now `{f}`", i + 1);
        }
    }
    format!(
        "committed {} lines, now {} lines",
        committed.len(),
        fresh.len()
    )
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let cpuinfo = read("/proc/cpuinfo");
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let brand = if model.contains("EPYC") {
        "AMD EPYC"
    } else if model.contains("Xeon") {
        "Intel Xeon"
    } else {
        model.as_str()
    };
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|m| m.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!(
        "Linux {kernel}, {cpus} CPUs ({brand}), {} GiB",
        mem_kib / (1024 * 1024)
    )
}

fn stamp() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let commit = git(&["rev-parse", "--short=7", "HEAD"]);
    let dirty = if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        "+"
    };
    let date = Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("# run at commit {commit}{dirty} on {}; {date}", machine())
}

fn rewrite(t: &Transcript, fresh: &[String]) {
    let mut text = format!("$ {}\n{}\n", t.command, stamp());
    for d in &t.directives {
        text.push_str(d);
        text.push('\n');
    }
    for line in fresh {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&t.path, text).unwrap();
    eprintln!("rewrote {}", t.path.display());
}

fn tool_missing(t: &Transcript) -> Option<&str> {
    t.needs.iter().map(String::as_str).find(|tool| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
    })
}

/// Checks (or, with STROLL_BLESS, rewrites) one transcript; returns what is wrong with it.
fn check(t: &Transcript, bless: bool) -> Result<(), String> {
    let name = t.path.file_name().unwrap().to_string_lossy().to_string();
    if let Some(tool) = tool_missing(t) {
        eprintln!("{name}: skipped, `{tool}` is not installed here");
        return Ok(());
    }
    let output = run(t).map_err(|e| format!("{name}: `{}` {e}", t.command))?;
    let fresh = excerpt(t, &output);
    if bless {
        rewrite(t, &fresh);
        return Ok(());
    }
    let (committed, now) = (shapes(&t.body), shapes(&fresh));
    if committed.iter().all(|l| l.trim().is_empty()) {
        return Err(format!("{name}: the transcript is empty"));
    }
    let matches = if t.loose {
        in_order(&committed, &now)
    } else {
        committed == now
    };
    if matches {
        return Ok(());
    }
    Err(format!(
        "{name}: `{}` no longer prints what the book shows ({}).\n  fresh output:\n{}",
        t.command,
        first_difference(&committed, &now),
        fresh.join("\n")
    ))
}

#[test]
fn every_transcript_still_matches_its_program() {
    let bless = std::env::var_os("STROLL_BLESS").is_some();
    let only = std::env::var("STROLL_RUNS").unwrap_or_default();
    let dir = root().join("docs/src/runs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(only.as_str())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let problems: Vec<String> = files
        .iter()
        .map(|f| parse(f))
        .filter_map(|t| check(&t, bless).err())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn shapes_ignore_figures_but_not_words() {
    assert_eq!(
        shape("took 12.5 ms,  then 3 µs"),
        shape("took 7 µs, then 1200 ms")
    );
    assert_eq!(shape("1000 threads: 3048 KiB"), "# threads: #");
    assert_ne!(shape("3 tasks polled"), shape("3 tasks woken"));
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        shapes(&lines(&["turn 1", "turn 2", "done"])),
        lines(&["turn #", "done"])
    );
    assert!(in_order(&lines(&["a", "c"]), &lines(&["a", "b", "c"])));
    assert!(!in_order(&lines(&["c", "a"]), &lines(&["a", "b", "c"])));
}

/// The READMEs cannot include files, so where one shows a program's output it says which
/// transcript it copies, on the line before the fence: `<!-- transcript: sizes.txt -->`. The
/// copy must be the transcript's output, line for line (the transcript itself is checked
/// against its program above).
#[test]
fn readme_copies_of_transcripts_are_exact() {
    let mut copies = 0;
    for readme in ["README.md", "chat-demo/README.md", "runtime/README.md"] {
        let Ok(text) = std::fs::read_to_string(root().join(readme)) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line
                .trim()
                .strip_prefix("<!-- transcript: ")
                .and_then(|rest| rest.strip_suffix(" -->"))
            else {
                continue;
            };
            let transcript = parse(&root().join("docs/src/runs").join(name));
            assert!(
                lines.get(i + 1).is_some_and(|l| l.starts_with("```")),
                "{readme}: a fence must follow the transcript marker for {name}"
            );
            let block: Vec<String> = lines[i + 2..]
                .iter()
                .take_while(|l| !l.starts_with("```"))
                .map(|l| l.to_string())
                .collect();
            let body: Vec<String> = transcript.body.clone();
            assert_eq!(
                block, body,
                "{readme}: the copy of {name} differs from the transcript (update the copy)"
            );
            copies += 1;
        }
    }
    assert!(
        copies > 0,
        "no README copies a transcript: is the marker still there?"
    );
}
