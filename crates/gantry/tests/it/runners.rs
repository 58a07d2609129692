//! Scenario tests of `gantry runners token|list` against the real binary: a registration token
//! for a runner group restricted to one repository, and the runner it registers as listed.

use serde_json::{Value, json};

use crate::support::{Server, text};

#[test]
fn runners_token_makes_a_group_token_and_runners_list_shows_the_runner_it_registered() {
    let server = Server::start();
    server.create_repo("acme", "ml");
    let made = server.cli(&[
        "runners", "token", "--org", "acme", "--group", "GPU", "--repo", "ml",
    ]);
    assert!(made.status.success(), "stderr: {}", text(&made.stderr));
    let token = text(&made.stdout).trim().to_owned();
    assert!(!token.is_empty() && !token.contains(' '), "{token}");
    assert!(
        text(&made.stderr).contains("group gpu"),
        "{}",
        text(&made.stderr)
    );

    let registered = server.post_ok(
        "/api/v1/runners/register",
        &json!({
            "token": token,
            "name": "farm-1",
            "labels": ["linux"],
            "capacity": 1,
            "ephemeral": false,
            "protocol_version": 1,
        }),
        201,
    );
    assert_eq!(registered["group"], "gpu");

    let listed = server.cli(&["runners", "list", "--json"]);
    assert!(listed.status.success(), "stderr: {}", text(&listed.stderr));
    let list: Value = serde_json::from_str(&text(&listed.stdout)).unwrap();
    let runner = &list["runners"][0];
    assert_eq!(runner["name"], "farm-1");
    assert_eq!(runner["org"], "acme");
    assert_eq!(runner["group"], "gpu");
    assert_eq!(runner["repositories"], json!(["ml"]));
    let plain = server.cli(&["runners", "list"]);
    let out = text(&plain.stdout);
    assert!(
        out.contains("farm-1") && out.contains("group=gpu repos=ml"),
        "{out}"
    );

    // An unknown repository is refused by name and no token is made.
    let refused = server.cli(&["runners", "token", "--org", "acme", "--repo", "nope"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("`nope`"),
        "{}",
        text(&refused.stderr)
    );
    assert!(text(&refused.stdout).is_empty());
}
