//! A headless Chromium driven over the Chrome DevTools Protocol, and a
//! loopback page server, for the tests that need a real browser (WebAuthn
//! ceremonies with a CDP virtual authenticator in custody-cli, WebCrypto
//! sealing through the npm `jose` package in custody-jose). Included by
//! path (`#[path = ...] mod chromium;`) from each test that uses it, so
//! that one copy of the protocol code serves both.
//!
//! Test code: a failed `unwrap` or `assert` here is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What a test's page server answers for one request path: the content
/// type and the body, or `None` for a 404.
pub(crate) type Route = dyn Fn(&str) -> Option<(&'static str, Vec<u8>)> + Send + Sync;

/// Serves `route` on 127.0.0.1 (reached as `http://localhost:PORT`, a
/// secure context) from a thread that lives as long as the test; returns
/// the port. Only `GET` of a path is read; anything else is a 404.
pub(crate) fn serve(route: Box<Route>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request
                .strip_prefix("GET ")
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or("");
            let (status, content_type, body) = match route(path) {
                Some((content_type, body)) => ("200 OK", content_type, body),
                None => ("404 Not Found", "text/plain", b"not found".to_vec()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// The browser process: killed with its helpers (its process group,
/// by the id the test started it with) when dropped, so a failing
/// assertion leaves no orphan.
struct Process {
    child: Child,
    profile: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser attached to one page.
pub(crate) struct Chromium {
    ws: TcpStream,
    next_id: u64,
    session: Option<String>,
    // Last: dropped (killed) after the connection is closed.
    _process: Process,
}

impl Chromium {
    /// Starts `binary` headless with a fresh profile and attaches to a
    /// new page.
    pub(crate) fn start(binary: &Path) -> Self {
        use std::os::unix::process::CommandExt as _;
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut process = Process { child, profile };
        // Chromium writes the port it picked and the browser target's
        // path to DevToolsActivePort in the profile.
        let file = process.profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some((port, path)) = text.split_once('\n')
                && !path.trim().is_empty()
            {
                break (port.trim().parse::<u16>().unwrap(), path.trim().to_owned());
            }
            assert!(
                process.child.try_wait().unwrap().is_none(),
                "chromium exited before listening"
            );
            assert!(Instant::now() < deadline, "chromium did not listen");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut browser = Self {
            ws: websocket(port, &path),
            next_id: 0,
            session: None,
            _process: process,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        browser
    }

    /// Sends a CDP command (to the attached page, once there is one)
    /// and returns its result, skipping events.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut message = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        send(&mut self.ws, message.to_string().as_bytes());
        loop {
            let reply: Value = serde_json::from_slice(&receive(&mut self.ws)).unwrap();
            if reply["id"] != self.next_id {
                continue;
            }
            assert!(reply.get("error").is_none(), "{method}: {}", reply["error"]);
            return reply["result"].clone();
        }
    }

    /// Evaluates `expression` (a promise) in the page, returning its
    /// value; a JavaScript exception fails the test with its text.
    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Opens another page (tab) of the same browser, its own virtual
    /// authenticators apart, and returns its session; the page
    /// commands go to it until [`Chromium::switch`] says otherwise.
    pub(crate) fn new_page(&mut self) -> String {
        self.session = None;
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        self.session = Some(session.clone());
        session
    }

    /// Sends the page commands that follow to the page of `session`.
    /// The page is brought to the front: a browser lets only a
    /// focused document run a WebAuthn ceremony.
    pub(crate) fn switch(&mut self, session: &str) {
        self.session = Some(session.to_owned());
        self.call("Page.bringToFront", json!({}));
    }

    /// Opens `url` and waits until the page has loaded.
    pub(crate) fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + Duration::from_secs(30);
        let origin = url.trim_end_matches('/');
        while self.eval("location.origin + ' ' + document.readyState")
            != format!("{origin} complete")
        {
            assert!(Instant::now() < deadline, "{url} did not load");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A WebSocket (RFC 6455) client connection to the DevTools endpoint.
fn websocket(port: u16, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: Y3VzdG9keS10ZXN0LWtleQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Sends one text frame, masked as a client must.
fn send(stream: &mut TcpStream, payload: &[u8]) {
    let mask = [0x5a, 0xc3, 0x96, 0x21];
    let mut frame = vec![0x81];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | u8::try_from(n).unwrap()),
        n @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
}

/// Reads one message (joining continuation frames, answering pings).
fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                stream.read_exact(&mut n).unwrap();
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                stream.read_exact(&mut n).unwrap();
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        assert_eq!(head[1] & 0x80, 0, "a server frame is never masked");
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        stream.read_exact(&mut payload).unwrap();
        match head[0] & 0x0f {
            0x9 => {
                let mut pong = vec![0x8a, 0x80 | u8::try_from(payload.len()).unwrap()];
                pong.extend_from_slice(&[0; 4]);
                pong.extend_from_slice(&payload);
                stream.write_all(&pong).unwrap();
            }
            0x8 => panic!("the DevTools connection closed"),
            0xa => {}
            _ => {
                message.extend_from_slice(&payload);
                if head[0] & 0x80 != 0 {
                    return message;
                }
            }
        }
    }
}
