//! The IMDS quoting client against a local HTTP server standing in for Azure's: the
//! request it sends, and every kind of answer it refuses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::*;

/// One request as the server saw it: the request line, the headers, the body.
#[derive(Debug, Default, Clone)]
struct Seen {
    line: String,
    headers: Vec<String>,
    body: Vec<u8>,
}

/// Serves `status` and `body` to every request on a local port; returns the URL and
/// what the requests were.
fn server(status: u16, body: Vec<u8>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/acc/tdquote", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut req = Seen::default();
            reader.read_line(&mut req.line).unwrap();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let line = line.trim_end().to_string();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                req.headers.push(line);
            }
            req.body = vec![0; len];
            reader.read_exact(&mut req.body).unwrap();
            s.lock().unwrap().push(req);
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, seen)
}

fn client(url: &str) -> ImdsTdQuote {
    ImdsTdQuote::new(url, Duration::from_secs(10))
}

#[test]
fn imds_td_quote_works() {
    let quote: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    for encoded in [
        Base64UrlUnpadded::encode_string(&quote),
        Base64Url::encode_string(&quote[..4999]),
    ] {
        let answer = format!(r#"{{"quote":"{encoded}","other":1}}"#);
        let (url, seen) = server(200, answer.into_bytes());
        let report: Vec<u8> = (0..TD_REPORT_LEN).map(|i| (i % 251) as u8).collect();
        let got = client(&url).td_quote(&report).unwrap();
        assert_eq!(
            got,
            Base64Url::decode_vec(&encoded).unwrap_or(quote.clone())
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].line.starts_with("POST /acc/tdquote "),
            "{:?}",
            seen[0]
        );
        assert!(
            seen[0]
                .headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case("content-type: application/json")),
            "{:?}",
            seen[0].headers
        );
        let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(
            Base64UrlUnpadded::decode_vec(body["report"].as_str().unwrap()).unwrap(),
            report
        );
    }
}

#[test]
fn imds_td_quote_rejects() {
    let report = [0u8; TD_REPORT_LEN];
    // Not a TD report: nothing is sent.
    let (url, seen) = server(200, br#"{"quote":"AAAA"}"#.to_vec());
    assert!(matches!(
        client(&url).td_quote(&report[..100]),
        Err(TdQuoteError::ReportLength(100))
    ));
    assert!(seen.lock().unwrap().is_empty());
    // Error statuses.
    for status in [400, 404, 500, 503] {
        let (url, _) = server(status, b"{}".to_vec());
        match client(&url).td_quote(&report) {
            Err(TdQuoteError::Status { status: s, .. }) => assert_eq!(s, status),
            other => panic!("{status}: {other:?}"),
        }
    }
    // Answers that are not a quote.
    for body in [
        &b"not json"[..],
        br#"{"quote": 5}"#,
        br#"{"report":"AAAA"}"#,
        br#"{"quote":""}"#,
        br#"{"quote":"!!!!"}"#,
        br#"{"quote":"AAAA/+=="}"#,
    ] {
        let (url, _) = server(200, body.to_vec());
        match client(&url).td_quote(&report) {
            Err(TdQuoteError::Answer { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
    // An answer over the size cap.
    let big = format!(
        r#"{{"quote":"{}"}}"#,
        "A".repeat(usize::try_from(MAX_TDQUOTE_RESPONSE).unwrap())
    );
    let (url, _) = server(200, big.into_bytes());
    assert!(matches!(
        client(&url).td_quote(&report),
        Err(TdQuoteError::Http { .. })
    ));
    // Nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(matches!(
        client(&format!("http://127.0.0.1:{port}/acc/tdquote")).td_quote(&report),
        Err(TdQuoteError::Http { .. })
    ));
}
