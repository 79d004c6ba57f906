//! Unit tests.
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn cfg() -> ApiConfig {
    ApiConfig {
        peer_rate: 1,
        peer_burst: 3,
        global_rate: 1_000,
        global_burst: 1_000,
        challenge_rate: 1,
        challenge_burst: 1,
        max_open_streams: 2,
        ..ApiConfig::default()
    }
}

#[test]
fn peer_rate_rejects_with_hint() {
    let l = Limiter::new(&cfg());
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let b: IpAddr = "10.0.0.2".parse().unwrap();
    for _ in 0..3 {
        l.admit(Some(a), Rpc::Any).unwrap();
    }
    let st = l.admit(Some(a), Rpc::Any).unwrap_err();
    assert_eq!(st.code(), tonic::Code::ResourceExhausted);
    let hint: u64 = st
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1_000).contains(&hint), "{hint}");
    // Another peer is not held up by the first.
    l.admit(Some(b), Rpc::Any).unwrap();
}

#[test]
fn challenge_rate_rejects() {
    let l = Limiter::new(&cfg());
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    l.admit(Some(a), Rpc::Challenge).unwrap();
    let st = l.admit(Some(a), Rpc::Challenge).unwrap_err();
    assert_eq!(st.code(), tonic::Code::ResourceExhausted);
    assert!(st.message().contains("challenges"));
}

#[test]
fn open_streams_are_bounded_works() {
    let l = Limiter::new(&cfg());
    let s1 = l.open_stream().unwrap();
    let _s2 = l.open_stream().unwrap();
    assert_eq!(
        l.open_stream().unwrap_err().code(),
        tonic::Code::ResourceExhausted
    );
    drop(s1);
    let _again = l.open_stream().unwrap();
}

#[test]
fn tracked_peers_are_bounded_works() {
    let l = Limiter::new(&ApiConfig {
        max_tracked_peers: 4,
        ..cfg()
    });
    for i in 0..100u8 {
        l.admit(Some(IpAddr::from([10, 0, 1, i])), Rpc::Any)
            .unwrap();
    }
    assert!(lock(&l.peers).len() <= 4);
}

#[test]
fn ipv6_peers_share_their_64_works() {
    let l = Limiter::new(&cfg());
    for i in 0..3u16 {
        let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, 0, 0, 1));
        l.admit(Some(ip), Rpc::Any).unwrap();
    }
    let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
    assert!(l.admit(Some(other), Rpc::Any).is_err());
    let elsewhere = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
    l.admit(Some(elsewhere), Rpc::Any).unwrap();
}
