//! `chat-demo timeline trace.json -o timeline.svg`: draws a stroll trace as an SVG timeline.
//!
//! One horizontal lane per task, plus one for the reactor at the top. Each poll is a bar on its
//! task's lane (green when it returned `Ready`, blue for `Pending`); each reactor wait is a grey
//! bar on the reactor lane, so the gaps between bars are the time the thread spent running
//! tasks. Each wake is a small mark, coloured by its cause (socket, timer, another task,
//! another thread). Hover over a bar or mark for its details. Read it top to bottom at one
//! moment and you see one thread interleaving many clients: only one bar is ever lit.
//!
//! `--from-us A --to-us B` zooms in: only the stretch from A to B microseconds after the trace
//! began is drawn (bars cut at its edges, lanes with nothing in it left out), the axis is in
//! microseconds, and bars and marks carry their labels as text, so the picture reads without
//! hovering. A window of a few hundred microseconds shows single polls as wide bars.
//!
//! The trace format is the one `STROLL_TRACE` writes (Chrome Trace Event Format, see
//! `runtime/observe/trace.rs`); a trace cut short (the program was killed) is read up to its last
//! complete event.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde_json::Value;

/// Width of the drawing area for time, in pixels.
const PLOT_WIDTH: f64 = 1400.0;
/// Width of the lane names on the left.
const LABEL_WIDTH: f64 = 260.0;
const LANE_HEIGHT: f64 = 22.0;
const TOP: f64 = 50.0;

/// One lane of the timeline.
#[derive(Debug, Default)]
struct Lane {
    name: String,
    sort_index: i64,
    /// Polls (or waits): (start µs, duration µs, label, ready, whole duration µs); the
    /// duration drawn is shorter than the whole when a window cuts the bar.
    bars: Vec<(f64, f64, String, bool, f64)>,
    /// Instant events: (time µs, kind, detail).
    marks: Vec<(f64, String, String)>,
}

/// A stretch of the trace to draw, in µs from its time zero: `(from, to)`.
pub type Window = (f64, f64);

/// Reads the trace at `input` and writes the SVG to `output`; with `window`, only that
/// stretch of time.
pub fn render_file(input: &Path, output: &Path, window: Option<Window>) -> io::Result<()> {
    if let Some((from, to)) = window {
        if !(from >= 0.0 && to > from) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the window needs 0 <= --from-us < --to-us",
            ));
        }
    }
    let text = std::fs::read_to_string(input)?;
    let events = parse_trace(&text)?;
    let svg = render_window(&events, window);
    std::fs::write(output, svg)?;
    println!(
        "wrote {} ({} events); open it in a browser",
        output.display(),
        events.len()
    );
    Ok(())
}

/// Parses a trace: a JSON array of events, possibly cut short after its last complete event.
pub fn parse_trace(text: &str) -> io::Result<Vec<Value>> {
    if let Ok(Value::Array(events)) = serde_json::from_str::<Value>(text) {
        return Ok(events);
    }
    // Cut short: keep every complete line, close the array.
    let mut repaired = String::from("[");
    for line in text.lines().skip(1) {
        let line = line.trim_end().trim_end_matches(',');
        if serde_json::from_str::<Value>(line).is_ok() {
            if repaired.len() > 1 {
                repaired.push(',');
            }
            repaired.push_str(line);
        }
    }
    repaired.push(']');
    match serde_json::from_str::<Value>(&repaired) {
        Ok(Value::Array(events)) => Ok(events),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a trace: expected a JSON array of trace events",
        )),
    }
}

/// Draws the events, or only those within `window`, as a self-contained SVG document.
pub fn render_window(events: &[Value], window: Option<Window>) -> String {
    let mut lanes = collect_lanes(events);
    let (start, end) = window.unwrap_or_else(|| time_span(events));
    if window.is_some() {
        for (_, lane) in &mut lanes {
            clip(lane, start, end);
        }
        lanes.retain(|(_, lane)| {
            lane.name == "reactor" || !lane.bars.is_empty() || !lane.marks.is_empty()
        });
    }
    let zoomed = window.is_some();
    let scale = PLOT_WIDTH / (end - start).max(1.0);
    let x = |t: f64| LABEL_WIDTH + (t - start) * scale;
    let height = TOP + LANE_HEIGHT * lanes.len() as f64 + 40.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 60.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let span = if zoomed {
        format!("{:.0} µs, from {start:.0} to {end:.0} µs", end - start)
    } else {
        format!("{:.1} ms", (end - start) / 1000.0)
    };
    let _ = writeln!(
        svg,
        r#"<text x="10" y="18" font-size="14">stroll trace: {} lanes, {span}; bars are polls (green Ready, blue Pending) and reactor waits (grey); marks are wakes</text>"#,
        lanes.len(),
    );
    draw_axis(&mut svg, start, end, &x, height, zoomed);
    for (row, (tid, lane)) in lanes.iter().enumerate() {
        let y = TOP + row as f64 * LANE_HEIGHT;
        draw_lane(&mut svg, *tid, lane, y, &x, scale, zoomed);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Groups events by lane (`tid`), in the order the lanes' sort indexes give.
fn collect_lanes(events: &[Value]) -> Vec<(u64, Lane)> {
    let mut lanes: BTreeMap<u64, Lane> = BTreeMap::new();
    for event in events {
        let Some(tid) = event["tid"].as_u64() else {
            continue;
        };
        let name = event["name"].as_str().unwrap_or("");
        let ts = event["ts"].as_f64().unwrap_or(0.0);
        let args = &event["args"];
        match event["ph"].as_str() {
            Some("M") if name == "thread_name" => {
                let lane = lanes.entry(tid).or_default();
                lane.name = args["name"].as_str().unwrap_or("").to_string();
            }
            Some("M") if name == "thread_sort_index" => {
                let lane = lanes.entry(tid).or_default();
                lane.sort_index = args["sort_index"].as_i64().unwrap_or(0);
            }
            Some("X") => {
                let dur = event["dur"].as_f64().unwrap_or(0.0);
                let ready = args["result"].as_str() == Some("Ready");
                let label = describe_bar(name, dur, args);
                lanes
                    .entry(tid)
                    .or_default()
                    .bars
                    .push((ts, dur, label, ready, dur));
            }
            Some("i") if name != "end" => {
                let detail = args
                    .as_object()
                    .map(|map| {
                        let parts: Vec<String> = map
                            .iter()
                            .map(|(k, v)| format!("{k}: {}", plain(v)))
                            .collect();
                        parts.join(", ")
                    })
                    .unwrap_or_default();
                lanes
                    .entry(tid)
                    .or_default()
                    .marks
                    .push((ts, name.to_string(), detail));
            }
            _ => {}
        }
    }
    let mut lanes: Vec<(u64, Lane)> = lanes.into_iter().collect();
    lanes.sort_by_key(|(tid, lane)| (lane.sort_index, *tid));
    lanes
}

/// Keeps only what `lane` shows between `from` and `to`, bars cut at the edges.
fn clip(lane: &mut Lane, from: f64, to: f64) {
    lane.bars.retain_mut(|(ts, dur, _, _, _)| {
        let (start, end) = (ts.max(from), (*ts + *dur).min(to));
        (*ts, *dur) = (start, end - start);
        end > start || (end == start && start > from && start < to)
    });
    lane.marks.retain(|(ts, _, _)| *ts >= from && *ts <= to);
}

/// The first and last timestamps, in µs.
fn time_span(events: &[Value]) -> (f64, f64) {
    let mut start = f64::MAX;
    let mut end = f64::MIN;
    for event in events {
        if let Some(ts) = event["ts"].as_f64() {
            start = start.min(ts);
            end = end.max(ts + event["dur"].as_f64().unwrap_or(0.0));
        }
    }
    if start > end {
        (0.0, 1.0)
    } else {
        (start, end)
    }
}

fn describe_bar(name: &str, dur: f64, args: &Value) -> String {
    let mut label = format!("{name}: {:.1} µs", dur);
    if let Some(result) = args["result"].as_str() {
        let _ = write!(label, ", {result}");
    }
    if let Some(events) = args["events"].as_u64() {
        let _ = write!(label, ", {events} events");
    }
    label
}

/// A JSON value as plain text (strings without quotes).
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Vertical grid lines with time labels: milliseconds from the start, or, zoomed in,
/// microseconds from the window's start.
fn draw_axis(
    svg: &mut String,
    start: f64,
    end: f64,
    x: &dyn Fn(f64) -> f64,
    height: f64,
    zoomed: bool,
) {
    let span = (end - start).max(1.0);
    let step = nice_step(span / 10.0);
    let mut t = if zoomed {
        start
    } else {
        (start / step).ceil() * step
    };
    while t <= end {
        let px = x(t);
        let label = if zoomed {
            format!("+{:.0} µs", t - start)
        } else {
            format!("{:.1} ms", (t - start) / 1000.0)
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" fill="#888">{label}</text>"##,
            TOP - 6.0,
            height - 25.0,
            TOP - 10.0,
        );
        t += step;
    }
}

/// 1, 2 or 5 times a power of ten, near `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    let mantissa = raw / power;
    let nice = if mantissa < 2.0 {
        1.0
    } else if mantissa < 5.0 {
        2.0
    } else {
        5.0
    };
    nice * power
}

/// One lane: its name, its bars, its marks; `labelled`: with their text beside them.
fn draw_lane(
    svg: &mut String,
    tid: u64,
    lane: &Lane,
    y: f64,
    x: &dyn Fn(f64) -> f64,
    scale: f64,
    labelled: bool,
) {
    let name = if lane.name.is_empty() {
        format!("lane {tid}")
    } else {
        lane.name.clone()
    };
    let _ = writeln!(
        svg,
        r#"<g class="lane" data-tid="{tid}" data-name="{}">"#,
        escape(&name)
    );
    let _ = writeln!(
        svg,
        r##"<text x="8" y="{:.1}">{}</text><line x1="{LABEL_WIDTH}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/>"##,
        y + 15.0,
        escape(&name),
        y + LANE_HEIGHT,
        LABEL_WIDTH + PLOT_WIDTH,
        y + LANE_HEIGHT
    );
    for (ts, dur, label, ready, whole) in &lane.bars {
        let fill = if lane.name == "reactor" {
            "#bbbbbb"
        } else if *ready {
            "#2e9e44"
        } else {
            "#2f6fd6"
        };
        let _ = writeln!(
            svg,
            r#"<rect class="bar" x="{:.2}" y="{:.1}" width="{:.2}" height="{:.1}" fill="{fill}"><title>{}</title></rect>"#,
            x(*ts),
            y + 4.0,
            (dur * scale).max(1.0),
            LANE_HEIGHT - 8.0,
            escape(label)
        );
        if labelled && dur * scale > 70.0 {
            // A bar the window cuts says so: its label is its whole length.
            let cut = if *whole > dur + 0.01 { " (cut)" } else { "" };
            let _ = writeln!(
                svg,
                r##"<text class="bar-label" x="{:.2}" y="{:.1}" fill="white">{whole:.0} µs{cut}</text>"##,
                x(*ts) + 4.0,
                y + 15.0,
            );
        }
    }
    for (ts, kind, detail) in &lane.marks {
        let color = mark_color(kind, detail);
        let px = x(*ts);
        let _ = writeln!(
            svg,
            r#"<path class="mark" d="M{px:.2},{:.1} l-3,-5 h6 z" fill="{color}"><title>{}: {}</title></path>"#,
            y + 7.0,
            escape(kind),
            escape(detail)
        );
        if labelled {
            let text = detail.trim_start_matches("cause: ");
            let text = if kind == "wake" { text } else { kind.as_str() };
            let _ = writeln!(
                svg,
                r#"<text class="mark-label" x="{:.2}" y="{:.1}" fill="{color}" font-size="10">{}</text>"#,
                px + 4.0,
                y + 8.0,
                escape(text)
            );
        }
    }
    svg.push_str("</g>\n");
}

/// Wake marks by cause; spawns and exits in black.
fn mark_color(kind: &str, detail: &str) -> &'static str {
    if kind != "wake" {
        return "#000000";
    }
    let cause = detail.trim_start_matches("cause: ");
    if cause.starts_with("readable") || cause.starts_with("writable") {
        "#e07b00"
    } else if cause.starts_with("timer") {
        "#9b30d9"
    } else if cause.starts_with("task") || cause == "self" {
        "#d62f2f"
    } else {
        "#00a0a0"
    }
}

/// Escapes text for XML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_short_trace_is_read_up_to_its_last_complete_event() {
        let text = "[\n{\"ph\":\"M\",\"pid\":1,\"tid\":0,\"name\":\"thread_name\",\"args\":{\"name\":\"a\"}},\n{\"ph\":\"X\",\"tid\":0,\"ts\":1.0,\"dur\":2.0,\"name\":\"p\",\"args\":{}},\n{\"ph\":\"i\",\"ti";
        let events = parse_trace(text).unwrap();
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn a_window_draws_only_what_happened_in_it() {
        let text = r#"[
{"ph":"M","pid":1,"tid":1,"name":"thread_name","args":{"name":"early"}},
{"ph":"M","pid":1,"tid":2,"name":"thread_name","args":{"name":"reader"}},
{"ph":"M","pid":1,"tid":4294967295,"name":"thread_name","args":{"name":"reactor"}},
{"ph":"X","pid":1,"tid":1,"ts":10.0,"dur":5.0,"name":"early","args":{"result":"Pending"}},
{"ph":"X","pid":1,"tid":4294967295,"ts":20.0,"dur":1000.0,"name":"wait","args":{"events":1}},
{"ph":"i","pid":1,"tid":2,"ts":1030.0,"s":"t","name":"wake","args":{"cause":"readable tcp 127.0.0.1:9"}},
{"ph":"X","pid":1,"tid":2,"ts":1040.0,"dur":100.0,"name":"reader","args":{"result":"Pending"}},
{"ph":"X","pid":1,"tid":2,"ts":5000.0,"dur":100.0,"name":"reader","args":{"result":"Pending"}}
]"#;
        let events = parse_trace(text).unwrap();
        let whole = render_window(&events, None);
        assert_eq!(whole.matches(r#"class="bar""#).count(), 4);
        assert!(whole.contains(r#"data-name="early""#));

        let svg = render_window(&events, Some((1000.0, 1200.0)));
        // The wait, cut at the window's left edge, and the first reader poll.
        assert_eq!(svg.matches(r#"class="bar""#).count(), 2);
        assert!(
            !svg.contains(r#"data-name="early""#),
            "a lane with nothing in the window goes"
        );
        assert!(svg.contains("from 1000 to 1200 µs"));
        assert!(
            svg.contains("+0 µs") && svg.contains("+200 µs"),
            "the axis is in µs"
        );
        assert!(
            svg.contains(">100 µs</text>"),
            "a wide bar is labelled with its length"
        );
        assert!(
            svg.contains(">readable tcp 127.0.0.1:9</text>"),
            "a wake says its cause"
        );
        // The wait's bar starts at the left edge of the plot and is 20 µs long.
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let wait = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("bar") && n.attribute("fill") == Some("#bbbbbb"))
            .unwrap();
        assert_eq!(wait.attribute("x"), Some("260.00"));
        assert_eq!(wait.attribute("width"), Some("140.00"));
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.7), 0.5);
        assert_eq!(nice_step(13.0), 10.0);
        assert_eq!(nice_step(310.0), 200.0);
    }
}
