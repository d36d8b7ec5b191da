//! Authentication cost on the hot path, and the timing check for key ids.
//!
//! `cargo bench -p portcullis-identity`. `valid_key`, `wrong_secret_known_id` and `unknown_id`
//! should cost the same: a refused key must not reveal whether its id exists.

use portcullis_core::{Audience, Environment};
use portcullis_identity::{keys, new_key, KeyCache, Store};

fn main() {
    divan::main();
}

struct Fixture {
    cache: KeyCache,
    valid: String,
    wrong_secret: String,
    unknown: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        store
            .create_tenant("acme", Audience::Customer, "pro")
            .await
            .unwrap();
        let pepper = b"bench-pepper".to_vec();
        let mut valid = String::new();
        for i in 0..1000 {
            let (minted, record) = new_key(
                &pepper,
                "acme",
                Environment::Live,
                vec!["inference".into()],
                None,
                String::new(),
                3600,
            );
            store.insert_key(record).await.unwrap();
            if i == 500 {
                valid = minted.text;
            }
        }
        let cache = KeyCache::load(
            &store,
            pepper,
            portcullis_identity::TokenSettings {
                issuer: "portcullis".into(),
                max_lifetime: 900,
            },
        )
        .await
        .unwrap();
        let id = keys::parse(&valid).unwrap().id.to_owned();
        let wrong_secret = keys::with_secret(Environment::Live, &id, &"A".repeat(keys::SECRET_LEN));
        let unknown = keys::with_secret(
            Environment::Live,
            &"B".repeat(keys::ID_LEN),
            &"A".repeat(keys::SECRET_LEN),
        );
        Fixture {
            cache,
            valid,
            wrong_secret,
            unknown,
            _dir: dir,
        }
    })
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn valid_key(bencher: divan::Bencher) {
    let f = fixture();
    bencher.bench(|| f.cache.authenticate(divan::black_box(&f.valid)).is_ok());
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn wrong_secret_known_id(bencher: divan::Bencher) {
    let f = fixture();
    bencher.bench(|| {
        f.cache
            .authenticate(divan::black_box(&f.wrong_secret))
            .is_err()
    });
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn unknown_id(bencher: divan::Bencher) {
    let f = fixture();
    bencher.bench(|| f.cache.authenticate(divan::black_box(&f.unknown)).is_err());
}

#[divan::bench(sample_count = 1000, sample_size = 100)]
fn malformed(bencher: divan::Bencher) {
    let f = fixture();
    bencher.bench(|| {
        f.cache
            .authenticate(divan::black_box("sk-not-a-portcullis-key"))
            .is_err()
    });
}

/// A token costs an Ed25519 signature check on top of the key lookup.
#[divan::bench(sample_count = 200, sample_size = 20)]
fn token(bencher: divan::Bencher) {
    let f = fixture();
    let principal = f.cache.authenticate(&f.valid).unwrap().principal;
    let (token, _) = f
        .cache
        .mint_token(&principal, vec!["inference".into()], vec![], None, 600)
        .unwrap();
    bencher.bench(|| f.cache.authenticate(divan::black_box(&token)).is_ok());
}
