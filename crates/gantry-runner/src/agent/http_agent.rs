//! The HTTP agent of gantry's clients (the runner's protocol client, the CLI, the
//! benchmarks' simulated runners): ureq's own, except that a server named by its IP address
//! is not looked up.
//!
//! ureq resolves the host of every request, even one sent on a pooled connection, and when
//! the call has a deadline (every client here sets one) it resolves on a thread spawned for
//! that lookup, so that a slow lookup can be given up. A server at `http://127.0.0.1:8080`
//! needs no lookup: `bench start-latency` at 1,000 jobs/s over HTTP spawned one thread per
//! request (2,116 `clone3` for 600 jobs under `strace -c`, against 98 connections), and
//! those threads were a tenth of the machine's time, taken from the server under test. A
//! heartbeating runner paid the same every few seconds.

use std::net::{IpAddr, SocketAddr};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// An agent with ureq's defaults but for lookups: `config` as given, IP addresses taken as
/// they are written, names looked up as ureq looks them up.
pub fn agent(config: Config) -> ureq::Agent {
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        AddressesAsWritten {
            lookup: DefaultResolver::default(),
        },
    )
}

/// A resolver that answers a URI whose host is an IP address with that address (and the
/// URI's port, or its scheme's), and passes every other URI to `lookup`.
#[derive(Debug)]
struct AddressesAsWritten<R> {
    lookup: R,
}

impl<R: Resolver> Resolver for AddressesAsWritten<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match written_address(uri) {
            Some(address) => {
                let mut addresses = self.empty();
                addresses.push(address);
                Ok(addresses)
            }
            None => self.lookup.resolve(uri, config, timeout),
        }
    }
}

/// The socket address a URI names by IP address, if it does.
fn written_address(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    // An IPv6 address is written in brackets in a URI.
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = uri.port_u16().or_else(|| match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A lookup that counts its calls and answers with one fixed address.
    #[derive(Debug, Default)]
    struct CountingLookup {
        calls: AtomicUsize,
    }

    impl Resolver for CountingLookup {
        fn resolve(
            &self,
            _uri: &Uri,
            _config: &Config,
            _timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut addresses = self.empty();
            addresses.push("10.0.0.1:9".parse().unwrap());
            Ok(addresses)
        }
    }

    fn resolve(resolver: &AddressesAsWritten<CountingLookup>, uri: &str) -> Vec<SocketAddr> {
        let uri: Uri = uri.parse().unwrap();
        resolver
            .resolve(&uri, &Config::default(), NextTimeout::default())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn an_address_as_written_is_not_looked_up() {
        let resolver = AddressesAsWritten {
            lookup: CountingLookup::default(),
        };
        let cases = [
            (
                "http://127.0.0.1:8080/api/v1/runner/claims",
                "127.0.0.1:8080",
            ),
            ("http://127.0.0.1/api", "127.0.0.1:80"),
            ("https://192.0.2.7/", "192.0.2.7:443"),
            ("http://[::1]:8080/api", "[::1]:8080"),
        ];
        for (uri, wanted) in cases {
            assert_eq!(resolve(&resolver, uri), [wanted.parse().unwrap()], "{uri}");
        }
        assert_eq!(resolver.lookup.calls.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_name_is_looked_up() {
        let resolver = AddressesAsWritten {
            lookup: CountingLookup::default(),
        };
        for uri in [
            "http://localhost:8080/",
            "http://ci.example.com/api",
            "http://10.0.0.1.example/",
        ] {
            assert_eq!(
                resolve(&resolver, uri),
                ["10.0.0.1:9".parse().unwrap()],
                "{uri}"
            );
        }
        assert_eq!(resolver.lookup.calls.load(Ordering::Relaxed), 3);
    }

    /// The agent still reaches a server by address (a real socket on loopback).
    #[test]
    fn the_agent_reaches_a_server_at_an_address() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 1024];
            let _ = stream.read(&mut request).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
        });
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build();
        let mut response = agent(config)
            .get(&format!("http://127.0.0.1:{port}/"))
            .call()
            .unwrap();
        assert_eq!(response.body_mut().read_to_string().unwrap(), "ok");
        server.join().unwrap();
    }
}
