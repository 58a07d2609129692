//! Repository sources: set, replaced, read back, refused for unknown repositories.

use gantry_store::{RepoId, RepositorySource};

use crate::fixtures::{assert_invalid, assert_not_found, org_and_repo};
use crate::harness::TestDb;

pub async fn repository_sources_are_set_replaced_and_read(db: &mut TestDb) {
    let store = db.store();
    let (_, repo) = org_and_repo(store, "acme").await;
    assert_not_found(store.get_repository_source(repo.id).await);

    let first = RepositorySource {
        repo_id: repo.id,
        git_path: "/srv/git/web.git".to_owned(),
        webhook_secret: Some("s3cret".to_owned()),
        git_url: None,
    };
    store.set_repository_source(first.clone()).await.unwrap();
    assert_eq!(store.get_repository_source(repo.id).await.unwrap(), first);

    // Setting again replaces the whole row, secret included.
    let second = RepositorySource {
        git_path: "/srv/git/web2.git".to_owned(),
        webhook_secret: None,
        git_url: Some("https://git.example/acme/web.git".to_owned()),
        ..first
    };
    store.set_repository_source(second.clone()).await.unwrap();
    assert_eq!(store.get_repository_source(repo.id).await.unwrap(), second);

    assert_not_found(
        store
            .set_repository_source(RepositorySource {
                repo_id: RepoId(repo.id.0 + 1000),
                git_path: "/x".to_owned(),
                webhook_secret: None,
                git_url: None,
            })
            .await,
    );
    assert_invalid(
        store
            .set_repository_source(RepositorySource {
                repo_id: repo.id,
                git_path: String::new(),
                webhook_secret: None,
                git_url: None,
            })
            .await,
    );
    assert_invalid(
        store
            .set_repository_source(RepositorySource {
                repo_id: repo.id,
                git_path: "/x".to_owned(),
                webhook_secret: None,
                git_url: Some(String::new()),
            })
            .await,
    );
}
