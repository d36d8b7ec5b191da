//! Across accounts: a shared table of prompt templates, and clusters of accounts linked by
//! them, by near-duplicate prompts (MinHash bands) or by shared infrastructure, scored as
//! one.
//!
//! A hundred accounts that each send a few dozen distill-grade requests look like a hundred
//! curious users; joined by the templates they share (or by one proxy prefix and client),
//! they are one campaign with thousands of such requests, and the cluster's own CUSUM sees
//! it. Links form only on distill-grade requests, so the benign majority (whose requests
//! are not) never joins a cluster, and a cluster's purity rests on that.

use crate::features::topic::TOPICS;
use crate::features::Observation;
use crate::sketch::Cusum;
use rustc_hash::FxHashMap;

/// Distill-grade uses, across all accounts, that make a template hot.
pub const HOT_TEMPLATE_USES: u32 = 8;
/// The share of an account's text requests that must be distill-grade before it is linked
/// to others: a person asks for worked answers now and then (a student, a third of the
/// time); a distilling account does little else. Common phrasings that many people share
/// then never join people into a cluster.
pub const LINK_DISTILL_SHARE: f64 = 0.5;
/// Most templates remembered; beyond it, templates used once are forgotten first.
const MAX_TEMPLATES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, Default)]
struct TemplateUse {
    uses: u32,
    distill_uses: u32,
    /// The last account above the link share that used it in a distill-grade request.
    last_distiller: u64,
    /// Accounts that used it in distill-grade requests (counted on change of account).
    distillers: u32,
    /// The last distiller's own distill test then, to seed a cluster it starts.
    last_distiller_test: Cusum,
}

/// A group of linked accounts.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub members: Vec<u64>,
    pub test: Cusum,
    pub distill_topics: [u32; TOPICS],
    pub distill_requests: u64,
}

/// What an account's assessment reads of its cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterView<'a> {
    pub id: u64,
    pub members: usize,
    pub test: Cusum,
    pub distill_topics: &'a [u32; TOPICS],
    pub distill_requests: u64,
}

#[derive(Debug, Default)]
pub struct Campaigns {
    templates: FxHashMap<u64, TemplateUse>,
    /// IP prefix and client fingerprint -> the last account with a distill-grade request
    /// from there.
    infra: FxHashMap<u64, (u64, Cusum)>,
    /// MinHash band -> the last account with a distill-grade request whose prompt had it:
    /// near-duplicate prompts (one ask lightly reworded) join accounts that share no
    /// template and no infrastructure.
    near: FxHashMap<u64, (u64, Cusum)>,
    parent: FxHashMap<u64, u64>,
    clusters: FxHashMap<u64, Cluster>,
}

impl Campaigns {
    /// Records a request of account `serial`; links it to other accounts where the request
    /// shares a hot template or infrastructure with theirs. Returns whether the request is
    /// distill-grade on a hot template.
    /// `own` is the account's own distill test: a cluster it starts begins with the
    /// evidence its members already gathered alone.
    pub fn observe(
        &mut self,
        serial: u64,
        own: Cusum,
        distill_share: f64,
        o: &Observation,
    ) -> bool {
        let mut hot = false;
        let mut link_to = [None; 2 + crate::features::minhash::BANDS];
        let linkable = o.distill && distill_share >= LINK_DISTILL_SHARE;
        if o.skeleton.distinctive() {
            if self.templates.len() >= MAX_TEMPLATES
                && !self.templates.contains_key(&o.skeleton.hash)
            {
                self.templates.retain(|_, t| t.uses > 1);
            }
            let t = self.templates.entry(o.skeleton.hash).or_default();
            t.uses = t.uses.saturating_add(1);
            if o.distill {
                t.distill_uses = t.distill_uses.saturating_add(1);
            }
            if linkable {
                if t.last_distiller != serial {
                    if t.last_distiller != 0 && t.distill_uses >= HOT_TEMPLATE_USES {
                        link_to[0] = Some((t.last_distiller, t.last_distiller_test));
                    }
                    t.distillers += 1;
                    t.last_distiller = serial;
                }
                t.last_distiller_test = own;
                hot = t.distill_uses >= HOT_TEMPLATE_USES;
            }
        }
        if linkable && o.ip_prefix != 0 && o.client != 0 {
            let place = o.ip_prefix ^ o.client.rotate_left(21);
            let last = self.infra.insert(place, (serial, own));
            if let Some(other) = last.filter(|&(other, _)| other != serial) {
                link_to[1] = Some(other);
            }
        }
        if linkable && o.minhash.is_some() {
            if self.near.len() >= MAX_TEMPLATES {
                self.near.clear();
            }
            for (i, band) in o.minhash.bands().into_iter().enumerate() {
                let last = self.near.insert(band, (serial, own));
                if let Some(other) = last.filter(|&(other, _)| other != serial) {
                    link_to[2 + i] = Some(other);
                }
            }
        }
        for (other, other_test) in link_to.into_iter().flatten() {
            self.link((serial, own), (other, other_test));
        }
        if let Some(root) = self.root_if_clustered(serial) {
            let c = self.clusters.get_mut(&root).expect("roots have clusters");
            c.test.step(o.distill, crate::risk::rates().distill);
            if o.distill {
                c.distill_requests += 1;
                c.distill_topics[o.topic as usize] += 1;
            }
        }
        hot
    }

    fn find(&mut self, serial: u64) -> u64 {
        let mut root = serial;
        while let Some(&p) = self.parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        // Path compression.
        let mut at = serial;
        while at != root {
            let next = self.parent[&at];
            self.parent.insert(at, root);
            at = next;
        }
        root
    }

    fn root_if_clustered(&mut self, serial: u64) -> Option<u64> {
        if !self.parent.contains_key(&serial) {
            return None;
        }
        Some(self.find(serial))
    }

    fn link(&mut self, (a, a_test): (u64, Cusum), (b, b_test): (u64, Cusum)) {
        for (s, test) in [(a, a_test), (b, b_test)] {
            if let std::collections::hash_map::Entry::Vacant(v) = self.parent.entry(s) {
                v.insert(s);
                self.clusters.insert(
                    s,
                    Cluster {
                        members: vec![s],
                        test,
                        distill_topics: [0; TOPICS],
                        distill_requests: 0,
                    },
                );
            }
        }
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        // The larger cluster absorbs the smaller.
        let (big, small) = if self.clusters[&ra].members.len() >= self.clusters[&rb].members.len() {
            (ra, rb)
        } else {
            (rb, ra)
        };
        let gone = self.clusters.remove(&small).expect("roots have clusters");
        self.parent.insert(small, big);
        let c = self.clusters.get_mut(&big).expect("roots have clusters");
        c.members.extend(gone.members);
        c.test.absorb(gone.test);
        c.distill_requests += gone.distill_requests;
        for (x, y) in c.distill_topics.iter_mut().zip(gone.distill_topics) {
            *x += y;
        }
    }

    /// The cluster an account belongs to, if it is linked to any other.
    pub fn cluster_of(&self, serial: u64) -> Option<ClusterView<'_>> {
        let mut root = *self.parent.get(&serial)?;
        while let Some(&p) = self.parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        let c = self.clusters.get(&root)?;
        Some(ClusterView {
            id: root,
            members: c.members.len(),
            test: c.test,
            distill_topics: &c.distill_topics,
            distill_requests: c.distill_requests,
        })
    }

    /// How many templates and clusters are held.
    pub fn sizes(&self) -> (usize, usize) {
        (self.templates.len(), self.clusters.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{prompt::Endpoint, Observation, RequestInput};
    use serde_json::json;

    fn obs(text: &str, ip: &str, ua: &str) -> Observation {
        let body = json!({"messages": [{"role": "user", "content": text}], "max_tokens": 4096});
        Observation::from_request(&RequestInput {
            ts: 0.0,
            tenant: "t",
            key: "k",
            ip,
            user_agent: ua,
            header_order: "",
            tls: "",
            endpoint: Endpoint::Chat,
            body: &body,
            response: None,
            status: 200,
            findings: 0,
        })
    }

    #[test]
    fn accounts_sharing_a_hot_template_become_one_cluster() {
        let mut c = Campaigns::default();
        let topics = [
            "photosynthesis",
            "recursion",
            "inflation",
            "the french revolution",
        ];
        for i in 0..40u64 {
            let o = obs(
                &format!(
                    "Explain step by step how {} works, with every intermediate result shown. Then give the final answer in one line.",
                    topics[i as usize % 4]
                ),
                &format!("198.51.{}.7", i),
                &format!("client-{i}"),
            );
            c.observe(1 + i % 10, Cusum::default(), 1.0, &o);
        }
        let view = c.cluster_of(1).expect("clustered");
        assert_eq!(view.members, 10);
        assert!(view.test.s > 0.0);
    }

    #[test]
    fn people_who_share_a_common_phrasing_are_not_linked() {
        let mut c = Campaigns::default();
        for i in 0..40u64 {
            let o = obs(
                "Can you help me understand how the tides work? Please explain it step by step.",
                &format!("198.51.{i}.7"),
                "browser",
            );
            // Students: a third of their requests distill-grade.
            c.observe(1 + i, Cusum::default(), 0.33, &o);
        }
        assert!(c.cluster_of(1).is_none());
    }

    #[test]
    fn shared_infrastructure_links_only_distill_grade_traffic() {
        let mut c = Campaigns::default();
        let plain = {
            let body = json!({"messages": [{"role": "user", "content": "hello"}]});
            Observation::from_request(&RequestInput {
                ts: 0.0,
                tenant: "t",
                key: "k",
                ip: "203.0.113.1",
                user_agent: "ua",
                header_order: "",
                tls: "",
                endpoint: Endpoint::Chat,
                body: &body,
                response: None,
                status: 200,
                findings: 0,
            })
        };
        c.observe(1, Cusum::default(), 1.0, &plain);
        c.observe(2, Cusum::default(), 1.0, &plain);
        assert!(c.cluster_of(1).is_none());
        c.observe(
            1,
            Cusum::default(),
            1.0,
            &obs("Think step by step about tides.", "203.0.113.1", "ua"),
        );
        c.observe(
            2,
            Cusum::default(),
            1.0,
            &obs("Think step by step about volcanoes.", "203.0.113.9", "ua"),
        );
        assert_eq!(c.cluster_of(2).unwrap().members, 2);
    }
}
