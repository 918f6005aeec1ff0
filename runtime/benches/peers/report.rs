//! Results: medians and spreads, the tables printed after each workload, and the Markdown
//! page and SVG chart written to `docs/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a number means.
#[derive(Clone, Copy)]
pub struct Metric {
    /// The metric's name in the tables, unit included ("ns per task").
    pub label: &'static str,
    /// Throughput-like metrics: the cost ratio is then tokio / runtime.
    pub higher_is_better: bool,
    /// This is the metric drawn for its workload in the chart.
    pub charted: bool,
}

impl Metric {
    /// A cost: lower is better.
    pub const fn cost(label: &'static str) -> Metric {
        Metric {
            label,
            higher_is_better: false,
            charted: false,
        }
    }

    /// A rate: higher is better.
    pub const fn rate(label: &'static str) -> Metric {
        Metric {
            label,
            higher_is_better: true,
            charted: false,
        }
    }

    /// The same metric, drawn in the chart.
    pub const fn charted(self) -> Metric {
        Metric {
            charted: true,
            ..self
        }
    }
}

/// One runtime's samples of one metric.
pub struct Series {
    pub runtime: &'static str,
    pub samples: Vec<f64>,
}

/// One metric of a workload, for every runtime that ran it.
pub struct MetricResult {
    pub metric: Metric,
    pub series: Vec<Series>,
}

/// Everything measured for one workload.
pub struct WorkloadResult {
    pub name: &'static str,
    /// One sentence: what was run and how many times.
    pub what: String,
    pub metrics: Vec<MetricResult>,
    /// Caveats printed under the table.
    pub notes: Vec<String>,
}

/// Median and range of a series.
#[derive(Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

fn summarize(samples: &[f64]) -> Option<Summary> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(Summary {
        median,
        min: sorted[0],
        max: sorted[n - 1],
    })
}

impl MetricResult {
    fn summary(&self, runtime: &str) -> Option<Summary> {
        let series = self.series.iter().find(|s| s.runtime == runtime)?;
        summarize(&series.samples)
    }

    /// The cost of `runtime` relative to tokio's (medians): < 1 means cheaper than tokio.
    fn cost_vs_tokio(&self, runtime: &str) -> Option<f64> {
        let value = self.summary(runtime)?.median;
        let tokio = self.summary("tokio")?.median;
        let ratio = if self.metric.higher_is_better {
            tokio / value
        } else {
            value / tokio
        };
        (value > 0.0 && tokio > 0.0 && ratio.is_finite()).then_some(ratio)
    }
}

/// The rows of a workload's table: metric, runtime, median, min - max, cost vs tokio.
fn rows(result: &WorkloadResult) -> Vec<[String; 5]> {
    let mut rows = Vec::new();
    for metric in &result.metrics {
        for (i, series) in metric.series.iter().enumerate() {
            let label = if i == 0 { metric.metric.label } else { "" };
            let (median, range) = match metric.summary(series.runtime) {
                Some(s) if series.samples.len() > 1 => (num(s.median), range(s)),
                Some(s) => (num(s.median), "(1 run)".to_string()),
                None => ("n/a".to_string(), String::new()),
            };
            let ratio = metric
                .cost_vs_tokio(series.runtime)
                .map_or("n/a".to_string(), |r| format!("{r:.2}"));
            rows.push([label.into(), series.runtime.into(), median, range, ratio]);
        }
    }
    rows
}

const HEADER: [&str; 5] = ["metric", "runtime", "median", "min - max", "cost vs tokio"];

/// The workload's table as plain text, for the terminal.
pub fn text_table(result: &WorkloadResult) -> String {
    let rows = rows(result);
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let [metric, runtime, median, range, ratio] = cells;
        let [w0, w1, w2, w3, w4] = widths;
        format!("  {metric:<w0$}  {runtime:<w1$}  {median:>w2$}  {range:>w3$}  {ratio:>w4$}\n")
    };
    let mut out = format!("== {}: {}\n", result.name, result.what);
    out += &line(HEADER);
    for row in &rows {
        out += &line(std::array::from_fn(|i| row[i].as_str()));
    }
    for ratio in stroll_ratios(result) {
        out += &format!("  {ratio}\n");
    }
    for note in &result.notes {
        out += &format!("  note: {note}\n");
    }
    out
}

/// "stroll/tokio (ns per task): 1.52, stroll costs more", one per metric.
fn stroll_ratios(result: &WorkloadResult) -> Vec<String> {
    let mut lines = Vec::new();
    for metric in &result.metrics {
        if let Some(ratio) = metric.cost_vs_tokio("stroll") {
            let verdict = match ratio {
                r if r < 0.995 => "stroll is cheaper",
                r if r > 1.005 => "stroll is dearer",
                _ => "on par",
            };
            lines.push(format!(
                "stroll/tokio cost, {}: {ratio:.2} ({verdict})",
                metric.metric.label
            ));
        }
    }
    lines
}

/// The workload's table in Markdown.
fn markdown_table(result: &WorkloadResult) -> String {
    let mut out = format!("### {}\n\n{}\n\n", result.name, result.what);
    out += &format!("| {} |\n", HEADER.join(" | "));
    out += "| --- | --- | ---: | ---: | ---: |\n";
    for row in rows(result) {
        out += &format!("| {} |\n", row.join(" | "));
    }
    for note in &result.notes {
        out += &format!("\n_Note: {note}_\n");
    }
    out + "\n"
}

/// A number with a precision that suits its size; thousands separated by commas.
pub fn num(value: f64) -> String {
    let decimals = match value.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    let (int, frac) = text.split_at(text.find('.').unwrap_or(text.len()));
    let (sign, digits) = int.split_at(usize::from(int.starts_with('-')));
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}{frac}")
}

fn range(summary: Summary) -> String {
    format!("{} - {}", num(summary.min), num(summary.max))
}

/// The machine the numbers come from.
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split(':').nth(1))
                .map(|value| value.trim().to_string())
        };
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|line| line.starts_with("MemTotal:"))
            .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or("unknown".into(), |kib| {
                format!("{:.0} GiB", kib / 1048576.0)
            });
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease");
        let rustc = Command::new("rustc").arg("--version").output().ok();
        Machine {
            cpu: field("model name").unwrap_or_else(|| "unknown CPU".into()),
            cores,
            memory,
            kernel: kernel.map_or("unknown".into(), |k| k.trim().to_string()),
            rustc: rustc
                .filter(|out| out.status.success())
                .map_or("rustc: unknown".into(), |out| {
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                }),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{}, {} cores, {} RAM; Linux {}; {}",
            self.cpu, self.cores, self.memory, self.kernel, self.rustc
        )
    }
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Howard Hinnant's civil-from-days algorithm.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The commit the benchmark was built from ("unknown" without git), marked when the working
/// tree had changes.
pub fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_string();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head} with uncommitted changes"),
        _ => head,
    }
}

/// What the docs page says about the run besides the tables.
pub struct RunInfo {
    pub machine: Machine,
    pub mode: &'static str,
    pub command: String,
    pub load_average: String,
    /// The commit measured (see [`commit`]).
    pub commit: String,
    pub notes: Vec<String>,
}

/// Writes `docs/benchmarks.md` and `docs/benchmarks.svg`; returns the page's path.
pub fn write_docs(results: &[WorkloadResult], info: &RunInfo) -> std::io::Result<PathBuf> {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the runtime package is inside the workspace")
        .join("docs");
    std::fs::create_dir_all(&docs)?;
    std::fs::write(docs.join("benchmarks.svg"), chart(results))?;
    let page = docs.join("benchmarks.md");
    std::fs::write(&page, markdown(results, info))?;
    Ok(page)
}

fn markdown(results: &[WorkloadResult], info: &RunInfo) -> String {
    let m = &info.machine;
    let mut out = String::from("# stroll next to tokio, smol and futures\n\n");
    out += "Generated by `runtime/benches/peers.rs`; its module documentation says exactly \
            what each workload does and how it is measured. Every table gives the median of \
            the runs and their spread; **cost vs tokio** divides a runtime's cost by tokio's \
            (for messages/s, tokio's rate by the runtime's), so below 1 means cheaper than \
            tokio. The runtimes ran interleaved (stroll, tokio, smol, futures, then again), \
            so slow drifts of the machine hit all of them alike.\n\n";
    out += &format!("- Date: {}\n", today());
    out += &format!(
        "- Machine: {}, {} cores, {} RAM\n",
        m.cpu, m.cores, m.memory
    );
    out += &format!("- Kernel: Linux {}\n", m.kernel);
    out += &format!("- Compiler: {}\n", m.rustc);
    out += &format!("- Commit: {}\n", info.commit);
    out += &format!("- Mode: {}\n", info.mode);
    out += &format!(
        "- Load average when the run started: {}\n",
        info.load_average
    );
    out += &format!("- Reproduce: `{}`\n\n", info.command);
    out += "![Cost of each workload relative to tokio (tokio = 1, lower is cheaper)]\
            (benchmarks.svg)\n\n## Results\n\n";
    for result in results {
        out += &markdown_table(result);
    }
    if !info.notes.is_empty() {
        out += "## Notes\n\n";
        for note in &info.notes {
            out += &format!("- {note}\n");
        }
    }
    // The hand-written part: the goals, and what stands in the way where they are not met.
    out += "\n";
    out += include_str!("analysis.md");
    out
}

/// The runtimes in chart order, with their colours.
const COLOURS: [(&str, &str); 4] = [
    ("stroll", "#d95f02"),
    ("tokio", "#1b9e77"),
    ("smol", "#7570b3"),
    ("futures", "#e7298a"),
];

/// A bar chart: one group per workload (its charted metric), one bar per runtime, each the
/// runtime's median cost divided by tokio's.
pub fn chart(results: &[WorkloadResult]) -> String {
    let groups: Vec<(String, Vec<(usize, f64)>)> = results
        .iter()
        .flat_map(|result| result.metrics.iter().map(move |m| (result.name, m)))
        .filter(|(_, m)| m.metric.charted)
        .map(|(name, m)| {
            let bars = COLOURS
                .iter()
                .enumerate()
                .filter_map(|(i, (runtime, _))| Some((i, m.cost_vs_tokio(runtime)?)))
                .collect();
            (format!("{name}|{}", m.metric.label), bars)
        })
        .collect();
    let top = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|&(_, r)| r))
        .fold(1.5_f64, f64::max)
        .min(4.0);
    let top = (top * 2.0).ceil() / 2.0;
    let (bar, gap, left, plot_top, plot_h) = (26.0, 40.0, 60.0, 50.0, 260.0);
    let group_w = bar * 4.0 + gap;
    let width = (left + group_w * groups.len() as f64 + 20.0).max(560.0);
    let height = plot_top + plot_h + 70.0;
    let y = |ratio: f64| plot_top + plot_h * (1.0 - ratio.min(top) / top);

    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">Cost relative to \
         tokio (tokio = 1, lower is cheaper)</text>\n"
    );
    for (i, (runtime, colour)) in COLOURS.iter().enumerate() {
        let x = left + i as f64 * 90.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"28\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"37\">{runtime}</text>",
            x + 14.0
        );
    }
    let mut tick = 0.0;
    while tick <= top + 1e-9 {
        let ty = y(tick);
        let dash = if tick == 1.0 {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let colour = if tick == 1.0 { "#333" } else { "#ddd" };
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{ty:.1}\" x2=\"{:.0}\" y2=\"{ty:.1}\" stroke=\"{colour}\"{dash}/>\
             <text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{tick:.1}</text>",
            width - 20.0,
            left - 6.0,
            ty + 4.0
        );
        tick += 0.5;
    }
    for (g, (label, bars)) in groups.iter().enumerate() {
        let x0 = left + gap / 2.0 + g as f64 * group_w;
        for &(i, ratio) in bars {
            let x = x0 + i as f64 * bar;
            let by = y(ratio);
            let colour = COLOURS[i].1;
            let clipped = if ratio > top { "+" } else { "" };
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{by:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
                 <title>{}: {ratio:.2}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{ratio:.2}{clipped}</text>",
                bar - 4.0,
                plot_top + plot_h - by,
                COLOURS[i].0,
                x + (bar - 4.0) / 2.0,
                by - 3.0
            );
        }
        let (name, metric) = label.split_once('|').unwrap_or((label, ""));
        let cx = x0 + bar * 2.0;
        let base = plot_top + plot_h;
        let _ = writeln!(
            svg,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{name}</text>",
            base + 16.0
        );
        for (i, line) in wrap(metric).iter().enumerate() {
            let _ = writeln!(
                svg,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{line}</text>",
                base + 30.0 + 13.0 * i as f64
            );
        }
    }
    svg + "</svg>\n"
}

/// A chart label on one line, or on two (split at the space nearest the middle) if long.
fn wrap(label: &str) -> Vec<&str> {
    if label.len() <= 18 {
        return vec![label];
    }
    let middle = label.len() / 2;
    let split = label
        .match_indices(' ')
        .map(|(i, _)| i)
        .min_by_key(|i| i.abs_diff(middle));
    match split {
        Some(i) => vec![&label[..i], &label[i + 1..]],
        None => vec![label],
    }
}
