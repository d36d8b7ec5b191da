//! The in-memory key cache that authentication reads on the hot path.
//!
//! A snapshot (`ArcSwap`) of every key with its tenant, replaced whole on reload: readers
//! never lock. Authentication is one hash-map lookup and one HMAC. An unknown key id still
//! costs one HMAC (against a dummy hash), so the time to refuse a wrong secret for a known id
//! and for an unknown id is the same, and a caller cannot learn which ids exist.
//!
//! Beside this file: `tokens` (minting, verifying and the verified-token cache, signing-key
//! rotation, the JWKS) and `last_used` (last-use times, written in batches).

mod last_used;
mod tokens;

use crate::keys;
use crate::store::{now, KeyKind, KeyRecord, Store, StoreError};
use crate::tokens::{generate_signing_key, Claims, Keyring};
use arc_swap::ArcSwap;
use portcullis_core::{Environment, KeyPrincipal, SharedClock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Why a presented key was refused. Deliberately coarse: the caller learns only that the key
/// is not a key at all, or not a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Not shaped like a Portcullis key, or the checksum is wrong.
    Malformed,
    /// Unknown, wrong secret, revoked or expired.
    Invalid,
    /// A token minted before its key was told to exchange again (the threat detector's
    /// `reexchange` action): valid in itself, refused until the key is exchanged anew.
    Reexchange,
}

struct Entry {
    secret_hash: [u8; 32],
    expires_at: i64,
    kind: KeyKind,
    principal: Arc<KeyPrincipal>,
    restrictions: Arc<Restrictions>,
    /// Last successful use (seconds), shared across snapshots so reloads keep it.
    last_used: Arc<AtomicI64>,
    /// What was last written to the store.
    last_flushed: Arc<AtomicI64>,
}

/// Where a key may be used from.
#[derive(Debug, Default)]
pub struct Restrictions {
    /// Networks the caller's address must be in; empty is anywhere.
    pub ips: Vec<ipnet::IpNet>,
    /// Origins a publishable key may be used from.
    pub origins: Vec<String>,
}

impl Restrictions {
    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.ips.is_empty() || self.ips.iter().any(|net| net.contains(&ip))
    }

    pub fn allows_origin(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}

/// What the caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Key(KeyKind),
    /// A short-lived token minted from a key.
    Token,
}

/// A verified credential.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Arc<KeyPrincipal>,
    pub credential: Credential,
    pub restrictions: Arc<Restrictions>,
}

/// How tokens are issued.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// The `iss` claim.
    pub issuer: String,
    /// Longest lifetime a token may have, in seconds.
    pub max_lifetime: i64,
}

pub struct KeyCache {
    pepper: Vec<u8>,
    /// Tenants by name: audience and plan, for principals from external issuers.
    tenants: ArcSwap<HashMap<String, (portcullis_core::Audience, String)>>,
    entries: ArcSwap<HashMap<String, Entry>>,
    keyring: ArcSwap<Keyring>,
    tokens: TokenSettings,
    revision: AtomicI64,
    /// One reload at a time: two that overlap could finish out of order, and the older
    /// snapshot (without a key just created) would replace the newer one until the next
    /// refresh, refusing that key meanwhile.
    reloading: tokio::sync::Mutex<()>,
    /// Tokens whose signature was already checked, until they expire: an Ed25519 check costs
    /// about 40 us, a lookup here well under 1 us. Revocation is still checked on every use.
    verified: std::sync::RwLock<HashMap<String, Arc<Claims>>>,
    /// Keys whose tokens minted up to a time (unix seconds) are refused: the caller must
    /// exchange the key again. Empty almost always.
    reexchange: ArcSwap<HashMap<String, i64>>,
    /// What expiry is decided by (the system clock, or a test's).
    clock: SharedClock,
}

impl KeyCache {
    /// Loads every usable key from the store.
    pub async fn load(
        store: &Store,
        pepper: Vec<u8>,
        tokens: TokenSettings,
    ) -> Result<KeyCache, StoreError> {
        KeyCache::load_with_clock(store, pepper, tokens, portcullis_core::clock::system()).await
    }

    /// As [`KeyCache::load`], deciding expiry by `clock`.
    pub async fn load_with_clock(
        store: &Store,
        pepper: Vec<u8>,
        tokens: TokenSettings,
        clock: SharedClock,
    ) -> Result<KeyCache, StoreError> {
        let cache = KeyCache {
            clock,
            pepper,
            tenants: ArcSwap::from_pointee(HashMap::new()),
            entries: ArcSwap::from_pointee(HashMap::new()),
            keyring: ArcSwap::from_pointee(Keyring::empty(&tokens.issuer)),
            tokens,
            revision: AtomicI64::new(i64::MIN),
            reloading: tokio::sync::Mutex::new(()),
            verified: Default::default(),
            reexchange: Default::default(),
        };
        cache.reload(store).await?;
        if !cache.keyring.load().has_signer() {
            store.rotate_signing_key(generate_signing_key()).await?;
            cache.reload(store).await?;
        }
        Ok(cache)
    }

    /// Seconds since the epoch, by the cache's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_secs()
    }

    /// Refuses the tokens minted from `key_id` up to `minted_by` (unix seconds): its
    /// caller must exchange the key again (and meets the key's own checks and mint limit).
    pub fn require_reexchange(&self, key_id: &str, minted_by: i64) {
        self.reexchange.rcu(|map| {
            let mut map = HashMap::clone(map);
            let at = map.entry(key_id.to_owned()).or_insert(minted_by);
            *at = (*at).max(minted_by);
            map
        });
    }

    /// Lifts [`KeyCache::require_reexchange`] for a key.
    pub fn clear_reexchange(&self, key_id: &str) {
        if self.reexchange.load().contains_key(key_id) {
            self.reexchange.rcu(|map| {
                let mut map = HashMap::clone(map);
                map.remove(key_id);
                map
            });
        }
    }

    /// Every key's re-exchange time at once, as the store holds them.
    pub fn replace_reexchange(&self, all: HashMap<String, i64>) {
        self.reexchange.store(Arc::new(all));
    }

    /// A new key record and its one-time text, created now by the cache's clock.
    #[allow(clippy::too_many_arguments)]
    pub fn new_key(
        &self,
        tenant: &str,
        environment: Environment,
        roles: Vec<String>,
        models: Option<Vec<String>>,
        description: String,
        lifetime_secs: i64,
    ) -> (keys::MintedKey, KeyRecord) {
        key_record(
            &self.pepper,
            tenant,
            environment,
            roles,
            models,
            description,
            self.now(),
            lifetime_secs,
        )
    }

    pub fn pepper(&self) -> &[u8] {
        &self.pepper
    }

    /// Replaces the snapshot with the store's current keys.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        let revision = store.key_revision().await?;
        let tenants: HashMap<String, _> = store
            .tenants()
            .await?
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let now = self.now();
        let previous = self.entries.load_full();
        let mut entries = HashMap::new();
        for key in store.keys(None).await? {
            if !key.is_usable(now) {
                continue;
            }
            let Some(tenant) = tenants.get(&key.tenant) else {
                continue;
            };
            let principal = Arc::new(KeyPrincipal {
                tenant: tenant.name.clone(),
                key_id: key.id.clone(),
                audience: tenant.audience,
                environment: key.environment,
                plan: tenant.plan.clone(),
                roles: key.roles.clone(),
                models: key.models.clone(),
            });
            let restrictions = Arc::new(Restrictions {
                ips: key
                    .allowed_ips
                    .iter()
                    .flatten()
                    .filter_map(|c| c.parse().ok())
                    .collect(),
                origins: key.allowed_origins.clone().unwrap_or_default(),
            });
            let (last_used, last_flushed) = match previous.get(&key.id) {
                Some(e) => (e.last_used.clone(), e.last_flushed.clone()),
                None => {
                    let stored = key.last_used_at.unwrap_or(0);
                    (
                        Arc::new(AtomicI64::new(stored)),
                        Arc::new(AtomicI64::new(stored)),
                    )
                }
            };
            entries.insert(
                key.id.clone(),
                Entry {
                    secret_hash: key.secret_hash,
                    expires_at: key.expires_at,
                    kind: key.kind,
                    principal,
                    restrictions,
                    last_used,
                    last_flushed,
                },
            );
        }
        let keyring = Keyring::load(store, &self.tokens.issuer, self.tokens.max_lifetime).await?;
        let tenant_table = tenants
            .values()
            .map(|t| (t.name.clone(), (t.audience, t.plan.clone())))
            .collect();
        self.entries.store(Arc::new(entries));
        self.tenants.store(Arc::new(tenant_table));
        self.keyring.store(Arc::new(keyring));
        self.revision.store(revision, Ordering::Release);
        Ok(())
    }

    /// Reloads when the store's key revision moved; true when it did.
    pub async fn refresh(&self, store: &Store) -> Result<bool, StoreError> {
        let revision = store.key_revision().await?;
        if revision == self.revision.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reload(store).await?;
        Ok(true)
    }

    /// Drops a key from this replica's snapshot at once (the store is updated separately).
    pub fn evict(&self, id: &str) {
        self.entries.rcu(|current| {
            let mut next: HashMap<String, Entry> = HashMap::with_capacity(current.len());
            for (k, e) in current.iter() {
                if k != id {
                    next.insert(
                        k.clone(),
                        Entry {
                            secret_hash: e.secret_hash,
                            expires_at: e.expires_at,
                            kind: e.kind,
                            principal: e.principal.clone(),
                            restrictions: e.restrictions.clone(),
                            last_used: e.last_used.clone(),
                            last_flushed: e.last_flushed.clone(),
                        },
                    );
                }
            }
            next
        });
    }

    /// Verifies a presented key.
    pub fn authenticate(&self, text: &str) -> Result<Authenticated, AuthFailure> {
        if !text.starts_with("pc_") && text.bytes().filter(|b| *b == b'.').count() == 2 {
            return self.authenticate_token(text);
        }
        let presented = keys::parse(text).ok_or(AuthFailure::Malformed)?;
        let entries = self.entries.load();
        let entry = entries.get(presented.id);
        let stored = entry.map(|e| &e.secret_hash).unwrap_or(&DUMMY_HASH);
        let secret_ok = keys::verify_secret(&self.pepper, presented.id, presented.secret, stored);
        match entry {
            Some(e)
                if secret_ok
                    && e.expires_at > self.now()
                    && e.principal.environment == presented.environment =>
            {
                // One relaxed store of a clock reading: the use is written to the store in
                // batches by `flush_last_used`, never per request.
                e.last_used.store(self.now(), Ordering::Relaxed);
                Ok(Authenticated {
                    principal: e.principal.clone(),
                    credential: Credential::Key(e.kind),
                    restrictions: e.restrictions.clone(),
                })
            }
            _ => Err(AuthFailure::Invalid),
        }
    }

    /// A tenant's audience and plan.
    pub fn tenant(&self, name: &str) -> Option<(portcullis_core::Audience, String)> {
        self.tenants.load().get(name).cloned()
    }

    /// Whether any usable publishable key accepts `origin` (answers CORS preflights, which
    /// carry no credentials).
    pub fn origin_known(&self, origin: &str) -> bool {
        self.entries
            .load()
            .values()
            .any(|e| e.kind == KeyKind::Publishable && e.restrictions.allows_origin(origin))
    }

    /// How many usable keys the snapshot holds.
    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const DUMMY_HASH: [u8; 32] = [0x5a; 32];

/// Builds a new key record and its one-time text.
pub fn new_key(
    pepper: &[u8],
    tenant: &str,
    environment: Environment,
    roles: Vec<String>,
    models: Option<Vec<String>>,
    description: String,
    lifetime_secs: i64,
) -> (keys::MintedKey, KeyRecord) {
    key_record(
        pepper,
        tenant,
        environment,
        roles,
        models,
        description,
        now(),
        lifetime_secs,
    )
}

#[allow(clippy::too_many_arguments)]
fn key_record(
    pepper: &[u8],
    tenant: &str,
    environment: Environment,
    roles: Vec<String>,
    models: Option<Vec<String>>,
    description: String,
    created_at: i64,
    lifetime_secs: i64,
) -> (keys::MintedKey, KeyRecord) {
    let minted = keys::mint(environment);
    let record = KeyRecord {
        id: minted.id.clone(),
        tenant: tenant.to_owned(),
        secret_hash: keys::hash_secret(pepper, &minted.id, minted.secret()),
        environment,
        kind: KeyKind::Secret,
        roles,
        models,
        description,
        created_at,
        expires_at: created_at.saturating_add(lifetime_secs),
        revoked_at: None,
        revoked_reason: None,
        allowed_ips: None,
        allowed_origins: None,
        last_used_at: None,
    };
    (minted, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::Audience;

    fn settings() -> TokenSettings {
        TokenSettings {
            issuer: "portcullis".into(),
            max_lifetime: 900,
        }
    }

    #[tokio::test]
    async fn tokens_carry_narrowed_scope_and_die_with_their_key() {
        let (_dir, store) = store().await;
        let pepper = b"pepper".to_vec();
        let (key, record) = new_key(
            &pepper,
            "acme",
            Environment::Live,
            vec!["inference".into(), "admin".into()],
            None,
            String::new(),
            3600,
        );
        store.insert_key(record).await.unwrap();
        let cache = KeyCache::load(&store, pepper, settings()).await.unwrap();
        let principal = cache.authenticate(&key.text).unwrap().principal;
        let (token, exp) = cache
            .mint_token(
                &principal,
                vec!["inference".into()],
                vec!["chat:invoke".into()],
                Some(vec!["chat".into()]),
                99_999,
            )
            .unwrap();
        assert!(exp <= now() + 900, "lifetime capped");
        let via_token = cache.authenticate(&token).unwrap();
        assert_eq!(via_token.credential, Credential::Token);
        assert_eq!(via_token.principal.roles, ["inference"]);
        assert_eq!(
            via_token.principal.models.as_deref(),
            Some(&["chat".to_string()][..])
        );
        assert_eq!(via_token.principal.plan, "pro");
        assert_eq!(
            cache.authenticate("a.b.c").unwrap_err(),
            AuthFailure::Invalid
        );

        store.revoke_key(&key.id, "").await.unwrap();
        cache.refresh(&store).await.unwrap();
        assert_eq!(
            cache.authenticate(&token).unwrap_err(),
            AuthFailure::Invalid
        );
    }

    #[tokio::test]
    async fn a_key_told_to_exchange_again_loses_its_older_tokens_and_keeps_working() {
        let (_dir, store) = store().await;
        let pepper = b"pepper".to_vec();
        let (key, record) = new_key(
            &pepper,
            "acme",
            Environment::Live,
            vec!["inference".into()],
            None,
            String::new(),
            3600,
        );
        store.insert_key(record).await.unwrap();
        let cache = KeyCache::load(&store, pepper, settings()).await.unwrap();
        let principal = cache.authenticate(&key.text).unwrap().principal;
        let (token, _) = cache
            .mint_token(&principal, vec!["inference".into()], vec![], None, 600)
            .unwrap();
        assert!(cache.authenticate(&token).is_ok());
        let minted_by = cache.now();
        cache.require_reexchange(&key.id, minted_by);
        assert_eq!(
            cache.authenticate(&token).unwrap_err(),
            AuthFailure::Reexchange
        );
        assert!(cache.authenticate(&key.text).is_ok(), "the key still works");
        // An earlier time never loosens a later one.
        cache.require_reexchange(&key.id, minted_by - 100);
        assert_eq!(
            cache.authenticate(&token).unwrap_err(),
            AuthFailure::Reexchange
        );
        cache.clear_reexchange(&key.id);
        assert!(cache.authenticate(&token).is_ok());
        // Tokens minted after the time stand (as the store's records are reloaded).
        cache.replace_reexchange(HashMap::from([(key.id.clone(), minted_by - 1)]));
        assert!(cache.authenticate(&token).is_ok());
        cache.replace_reexchange(HashMap::from([(key.id.clone(), minted_by)]));
        assert!(cache.authenticate(&token).is_err());
    }

    #[tokio::test]
    async fn a_token_signed_with_the_real_key_still_cannot_say_more_than_its_key() {
        // F6: whoever reads the signing key can sign any claims; the key bounds them anyway.
        let (_dir, store) = store().await;
        let pepper = b"pepper".to_vec();
        let (key, record) = new_key(
            &pepper,
            "acme",
            Environment::Live,
            vec!["inference".into()],
            Some(vec!["chat".into()]),
            String::new(),
            3600,
        );
        store.insert_key(record).await.unwrap();
        let cache = KeyCache::load(&store, pepper, settings()).await.unwrap();
        let principal = cache.authenticate(&key.text).unwrap().principal;
        let (token, _) = cache
            .mint_token(
                &principal,
                vec!["inference".into()],
                vec![],
                Some(vec!["chat".into()]),
                60,
            )
            .unwrap();
        let honest = (*cache.verified_claims(&token).unwrap()).clone();
        assert!(cache.authenticate(&token).is_ok());
        let forged = |edit: &dyn Fn(&mut Claims)| {
            let mut claims = honest.clone();
            claims.jti = format!("forged-{}", keys::random_base62(8));
            edit(&mut claims);
            cache.keyring.load().sign(&claims).unwrap()
        };
        // The control: re-signed claims that say no more than the key are accepted.
        assert!(cache.authenticate(&forged(&|_| {})).is_ok());
        for (what, token) in [
            ("roles", forged(&|c| c.roles = vec!["admin".into()])),
            ("models", forged(&|c| c.models = None)),
            (
                "other models",
                forged(&|c| c.models = Some(vec!["embed".into()])),
            ),
            ("lifetime", forged(&|c| c.exp = c.iat + 10 * 365 * 86_400)),
        ] {
            assert_eq!(
                cache.authenticate(&token).unwrap_err(),
                AuthFailure::Invalid,
                "a token with forged {what} was accepted"
            );
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        store
            .create_tenant("acme", Audience::Customer, "pro")
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn keys_authenticate_until_revoked_or_expired() {
        let (_dir, store) = store().await;
        let pepper = b"pepper".to_vec();
        let (live, record) = new_key(
            &pepper,
            "acme",
            Environment::Live,
            vec!["inference".into()],
            None,
            String::new(),
            3600,
        );
        store.insert_key(record).await.unwrap();
        let (expired, mut record) = new_key(
            &pepper,
            "acme",
            Environment::Live,
            vec![],
            None,
            String::new(),
            3600,
        );
        record.expires_at = now() - 1;
        store.insert_key(record).await.unwrap();

        let cache = KeyCache::load(&store, pepper.clone(), settings())
            .await
            .unwrap();
        let ok = cache.authenticate(&live.text).unwrap();
        assert_eq!(ok.principal.tenant, "acme");
        assert_eq!(ok.principal.plan, "pro");
        assert_eq!(ok.principal.audience, Audience::Customer);
        assert_eq!(
            cache.authenticate(&expired.text).unwrap_err(),
            AuthFailure::Invalid
        );
        assert_eq!(
            cache.authenticate("sk-nope").unwrap_err(),
            AuthFailure::Malformed
        );

        // A key minted with the same shape but never stored is invalid, not malformed.
        let stranger = keys::mint(Environment::Live);
        assert_eq!(
            cache.authenticate(&stranger.text).unwrap_err(),
            AuthFailure::Invalid
        );

        assert!(!cache.refresh(&store).await.unwrap(), "nothing changed");
        assert_eq!(
            cache.flush_last_used(&store).await.unwrap(),
            1,
            "one key was used"
        );
        assert_eq!(
            cache.flush_last_used(&store).await.unwrap(),
            0,
            "nothing new to write"
        );
        assert!(
            store
                .key(&live.id)
                .await
                .unwrap()
                .unwrap()
                .last_used_at
                .unwrap()
                > 0
        );
        assert!(store.revoke_key(&live.id, "test").await.unwrap());
        assert!(cache.refresh(&store).await.unwrap());
        assert_eq!(
            cache.authenticate(&live.text).unwrap_err(),
            AuthFailure::Invalid
        );
    }

    #[tokio::test]
    async fn a_different_pepper_verifies_nothing() {
        let (_dir, store) = store().await;
        let (key, record) = new_key(
            b"one",
            "acme",
            Environment::Test,
            vec![],
            None,
            String::new(),
            60,
        );
        store.insert_key(record).await.unwrap();
        let cache = KeyCache::load(&store, b"two".to_vec(), settings())
            .await
            .unwrap();
        assert_eq!(
            cache.authenticate(&key.text).unwrap_err(),
            AuthFailure::Invalid
        );
    }
}
