//! The chat protocol's rules, shared by all four servers: framing lines with a length limit,
//! nickname rules, parsing commands, and the exact text of every line the server sends.
//!
//! Nothing here does I/O: the servers feed in bytes they read and get back lines and replies,
//! so every server speaks exactly the same protocol.
//!
//! The protocol, as a client sees it:
//! - Lines of UTF-8 ending in `\n` (`\r\n` accepted). Lines from the server starting `* ` are
//!   notices, `! ` are errors.
//! - The first line is a nickname: 1-16 of `A-Z a-z 0-9 _ -`. Then every line is a message to
//!   everyone else, or a command: `/who`, `/nick NEW`, `/quit`.
//! - Invalid UTF-8 is replaced with U+FFFD; so are control characters (NUL, escape...), so one
//!   client cannot send escape sequences to another's terminal.

/// The longest nickname, in bytes (all allowed characters are ASCII).
pub const MAX_NICK: usize = 16;

/// Why a nickname was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NickError {
    Empty,
    TooLong,
    BadCharacter(char),
}

/// Checks a nickname against the rules: 1-16 of `[A-Za-z0-9_-]`.
pub fn validate_nick(nick: &str) -> Result<(), NickError> {
    if nick.is_empty() {
        return Err(NickError::Empty);
    }
    if let Some(bad) = nick
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(NickError::BadCharacter(bad));
    }
    if nick.len() > MAX_NICK {
        return Err(NickError::TooLong);
    }
    Ok(())
}

/// What a line from a logged-in client asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// An empty line: ignored.
    Empty,
    /// Text for everyone else.
    Message(&'a str),
    /// `/who`: list who is online.
    Who,
    /// `/nick NEW`: rename.
    Nick(&'a str),
    /// `/quit`: leave.
    Quit,
    /// `/tasks`: the server's task table (servers on stroll only).
    Tasks,
    /// `/block MS`: the server blocks its thread for MS milliseconds, on purpose, to show
    /// what blocking an event loop does (and what it does not do to a thread per client).
    Block(&'a str),
    /// A `/word` that is not a command.
    Unknown(&'a str),
}

/// Parses one line (already without its line ending).
pub fn parse_command(line: &str) -> Command<'_> {
    if line.is_empty() {
        return Command::Empty;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Command::Message(line);
    };
    let (word, argument) = match rest.split_once(' ') {
        Some((word, argument)) => (word, argument.trim()),
        None => (rest, ""),
    };
    match word {
        "who" => Command::Who,
        "nick" => Command::Nick(argument),
        "quit" => Command::Quit,
        "tasks" => Command::Tasks,
        "block" => Command::Block(argument),
        _ => Command::Unknown(word),
    }
}

/// Turns a line's bytes into text: invalid UTF-8 and control characters (other than tab)
/// become U+FFFD. Never fails.
pub fn clean_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// One thing a [`LineReader`] found in the bytes it was fed.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` or `\r\n`.
    Line(Vec<u8>),
    /// A line grew past the limit; its bytes up to the next `\n` are being discarded.
    TooLong,
}

/// Splits a byte stream into lines, holding at most `max_line` bytes of a partial line.
///
/// A line longer than `max_line` bytes (not counting its line ending) is reported once as
/// [`Frame::TooLong`] as soon as it passes the limit; the rest of it, up to the next `\n`, is
/// dropped, and the line after it is read normally.
#[derive(Debug)]
pub struct LineReader {
    max_line: usize,
    /// The partial line so far. Invariant: `partial.len() <= max_line + 1` (the `+ 1` is room
    /// for a `\r` that may turn out to be part of a `\r\n` ending).
    partial: Vec<u8>,
    /// Inside an overlong line: drop bytes until the next `\n`.
    discarding: bool,
}

impl LineReader {
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            max_line,
            partial: Vec::new(),
            discarding: false,
        }
    }

    /// Feeds bytes read from the connection; appends what they complete to `frames`.
    pub fn feed(&mut self, mut bytes: &[u8], frames: &mut Vec<Frame>) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (chunk, rest, ends_line) = match newline {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            self.take_chunk(chunk, ends_line, frames);
            bytes = rest;
        }
    }

    /// Handles the bytes of one line up to (not including) its `\n`, if it has one yet.
    fn take_chunk(&mut self, chunk: &[u8], ends_line: bool, frames: &mut Vec<Frame>) {
        if self.discarding {
            self.discarding = !ends_line;
            return;
        }
        if self.partial.len() + chunk.len() > self.max_line + 1 {
            // Even with a `\r` ending, this line is over the limit.
            self.partial.clear();
            self.discarding = !ends_line;
            frames.push(Frame::TooLong);
            return;
        }
        self.partial.extend_from_slice(chunk);
        if !ends_line {
            return;
        }
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.max_line {
            frames.push(Frame::TooLong);
        } else {
            frames.push(Frame::Line(line));
        }
    }

    /// How many bytes of a partial line are held.
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }
}

/// The exact text of every line the server sends, in one place.
pub mod say {
    use super::{NickError, MAX_NICK};

    pub fn greeting() -> String {
        format!("* welcome to stroll chat! pick a nickname: 1-{MAX_NICK} of A-Z a-z 0-9 _ -\n")
    }

    pub fn welcome(nick: &str, online: usize) -> String {
        format!("* hello {nick}, you are in; {online} online. commands: /who, /nick NEW, /quit\n")
    }

    pub fn joined(nick: &str) -> String {
        format!("* {nick} joined\n")
    }

    pub fn left(nick: &str) -> String {
        format!("* {nick} left\n")
    }

    pub fn renamed(old: &str, new: &str) -> String {
        format!("* {old} is now {new}\n")
    }

    pub fn you_are_now(nick: &str) -> String {
        format!("* you are now {nick}\n")
    }

    pub fn message(nick: &str, text: &str) -> String {
        format!("{nick}: {text}\n")
    }

    pub fn online(nicks: &[&str]) -> String {
        format!("* online: {}\n", nicks.join(", "))
    }

    pub fn bye() -> String {
        "* bye\n".to_string()
    }

    pub fn shutting_down() -> String {
        "* server shutting down\n".to_string()
    }

    pub fn invalid_nick(nick: &str, why: &NickError) -> String {
        let why = match why {
            NickError::Empty => "it is empty".to_string(),
            NickError::TooLong => format!("it is longer than {MAX_NICK} characters"),
            NickError::BadCharacter(c) => {
                format!("{c:?} is not allowed (use A-Z a-z 0-9 _ -)")
            }
        };
        format!("! invalid nickname {nick:?}: {why}\n")
    }

    pub fn nick_taken(nick: &str) -> String {
        format!("! nickname {nick} is taken, try another\n")
    }

    pub fn line_too_long(max_line: usize) -> String {
        format!("! line too long (max {max_line} bytes)\n")
    }

    pub fn unknown_command(word: &str) -> String {
        format!("! unknown command /{word} (try /who, /nick NEW, /quit)\n")
    }

    pub fn login_timeout(limit: std::time::Duration) -> String {
        format!(
            "! login timeout: no nickname within {} s\n",
            limit.as_secs_f64()
        )
    }

    pub fn server_full() -> String {
        "! server full\n".to_string()
    }

    /// To a connection that arrives while the server is stopping.
    pub fn refused_shutting_down() -> String {
        "! server shutting down\n".to_string()
    }

    /// The last line to a client cut off because `max_queue` bytes waited for it (IRC's
    /// "SendQ exceeded").
    pub fn too_slow(max_queue: usize) -> String {
        format!(
            "! disconnected: you read too slowly (more than {} waiting)\n",
            bytes(max_queue)
        )
    }

    /// `1 MiB`, `64 KiB`, `1000 bytes`.
    fn bytes(n: usize) -> String {
        match n {
            n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
            n if n >= 1 << 10 && n.is_multiple_of(1 << 10) => format!("{} KiB", n >> 10),
            n => format!("{n} bytes"),
        }
    }

    /// Each line of a multi-line report (the task table) as a notice.
    pub fn notice_lines(text: &str) -> String {
        text.lines().map(|line| format!("* {line}\n")).collect()
    }

    pub fn blocking(millis: u64) -> String {
        format!("* blocking the server's thread for {millis} ms with std::thread::sleep\n")
    }

    pub fn block_usage(max: u64) -> String {
        format!("! usage: /block MS, with MS from 1 to {max}\n")
    }

    pub fn tasks_unavailable() -> String {
        "! /tasks works in --mode async and --mode state-machine (the servers on stroll)\n"
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(reader: &mut LineReader, bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        reader.feed(bytes, &mut out);
        out
    }

    #[test]
    fn lines_split_on_newline_and_crlf() {
        let mut reader = LineReader::new(10);
        let got = frames(&mut reader, b"ab\ncd\r\nef");
        assert_eq!(
            got,
            [Frame::Line(b"ab".to_vec()), Frame::Line(b"cd".to_vec())]
        );
        assert_eq!(reader.buffered(), 2);
        assert_eq!(frames(&mut reader, b"\n"), [Frame::Line(b"ef".to_vec())]);
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes() {
        let mut reader = LineReader::new(4);
        assert_eq!(
            frames(&mut reader, b"abcd\r\nabcd\n"),
            [Frame::Line(b"abcd".to_vec()), Frame::Line(b"abcd".to_vec())]
        );
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_skipped() {
        let mut reader = LineReader::new(4);
        assert_eq!(frames(&mut reader, b"abcdef"), [Frame::TooLong]);
        assert_eq!(frames(&mut reader, b"ghijkl"), []);
        assert_eq!(reader.buffered(), 0);
        assert_eq!(
            frames(&mut reader, b"mn\nok\n"),
            [Frame::Line(b"ok".to_vec())]
        );
    }

    #[test]
    fn the_reader_never_holds_more_than_the_limit() {
        let mut reader = LineReader::new(8);
        for _ in 0..1000 {
            frames(&mut reader, b"xxx");
            assert!(reader.buffered() <= 9);
        }
    }

    #[test]
    fn an_overlong_line_with_crlf_at_the_boundary() {
        let mut reader = LineReader::new(3);
        assert_eq!(frames(&mut reader, b"abcd\r\n"), [Frame::TooLong]);
        assert_eq!(frames(&mut reader, b"abc\r"), []);
        assert_eq!(frames(&mut reader, b"\n"), [Frame::Line(b"abc".to_vec())]);
    }

    #[test]
    fn nick_rules() {
        assert!(validate_nick("alice_01-x").is_ok());
        assert_eq!(validate_nick(""), Err(NickError::Empty));
        assert_eq!(validate_nick(&"a".repeat(17)), Err(NickError::TooLong));
        assert!(validate_nick(&"a".repeat(16)).is_ok());
        assert_eq!(validate_nick("al ice"), Err(NickError::BadCharacter(' ')));
        assert_eq!(validate_nick("zoé"), Err(NickError::BadCharacter('é')));
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse_command(""), Command::Empty);
        assert_eq!(parse_command("hi /who"), Command::Message("hi /who"));
        assert_eq!(parse_command("/who"), Command::Who);
        assert_eq!(parse_command("/nick  bob "), Command::Nick("bob"));
        assert_eq!(parse_command("/nick"), Command::Nick(""));
        assert_eq!(parse_command("/quit"), Command::Quit);
        assert_eq!(parse_command("/tasks"), Command::Tasks);
        assert_eq!(parse_command("/block 200"), Command::Block("200"));
        assert_eq!(parse_command("/dance now"), Command::Unknown("dance"));
    }

    #[test]
    fn text_is_cleaned_never_rejected() {
        assert_eq!(clean_text(b"caf\xc3\xa9"), "café");
        assert_eq!(clean_text(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(clean_text(b"a\0b\x1b[2Jc\td"), "a\u{FFFD}b\u{FFFD}[2Jc\td");
    }
}
