//! Across accounts: a shared table of prompt templates, and clusters of accounts linked by
//! them or by shared infrastructure, scored as one.
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
/// Most templates remembered; beyond it, templates used once are forgotten first.
const MAX_TEMPLATES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, Default)]
struct TemplateUse {
    uses: u32,
    distill_uses: u32,
    /// The last account that used it in a distill-grade request.
    last_distiller: u64,
    /// Accounts that used it in distill-grade requests (counted on change of account).
    distillers: u32,
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
    infra: FxHashMap<u64, u64>,
    parent: FxHashMap<u64, u64>,
    clusters: FxHashMap<u64, Cluster>,
}

impl Campaigns {
    /// Records a request of account `serial`; links it to other accounts where the request
    /// shares a hot template or infrastructure with theirs. Returns whether the request is
    /// distill-grade on a hot template.
    pub fn observe(&mut self, serial: u64, o: &Observation) -> bool {
        let mut hot = false;
        let mut link_to = [None, None];
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
                if t.last_distiller != serial {
                    if t.last_distiller != 0 && t.distill_uses >= HOT_TEMPLATE_USES {
                        link_to[0] = Some(t.last_distiller);
                    }
                    t.distillers += 1;
                    t.last_distiller = serial;
                }
                hot = t.distill_uses >= HOT_TEMPLATE_USES;
            }
        }
        if o.distill && o.ip_prefix != 0 && o.client != 0 {
            let place = o.ip_prefix ^ o.client.rotate_left(21);
            let last = self.infra.insert(place, serial);
            if let Some(other) = last.filter(|&other| other != serial) {
                link_to[1] = Some(other);
            }
        }
        for other in link_to.into_iter().flatten() {
            self.link(serial, other);
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

    fn link(&mut self, a: u64, b: u64) {
        for s in [a, b] {
            if let std::collections::hash_map::Entry::Vacant(v) = self.parent.entry(s) {
                v.insert(s);
                self.clusters.insert(
                    s,
                    Cluster {
                        members: vec![s],
                        test: Cusum::default(),
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
                    "Explain step by step how {} works, with every intermediate result shown.",
                    topics[i as usize % 4]
                ),
                &format!("198.51.{}.7", i),
                &format!("client-{i}"),
            );
            c.observe(1 + i % 10, &o);
        }
        let view = c.cluster_of(1).expect("clustered");
        assert_eq!(view.members, 10);
        assert!(view.test.s > 0.0);
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
                endpoint: Endpoint::Chat,
                body: &body,
                response: None,
                status: 200,
                findings: 0,
            })
        };
        c.observe(1, &plain);
        c.observe(2, &plain);
        assert!(c.cluster_of(1).is_none());
        c.observe(
            1,
            &obs("Think step by step about tides.", "203.0.113.1", "ua"),
        );
        c.observe(
            2,
            &obs("Think step by step about volcanoes.", "203.0.113.9", "ua"),
        );
        assert_eq!(c.cluster_of(2).unwrap().members, 2);
    }
}
