//! Input guard settings: Unicode sanitation and injection screening, globally, per plan and
//! per model.

use serde::Deserialize;

/// `[guard]`, `[plans.NAME.guard]` or `guard = {...}` on a model: fields left out fall back
/// to the wider setting (model over plan over global).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// Invisible smuggling characters in prompts: `strip` them (default), `reject` the
    /// request, or leave them (`off`).
    pub unicode: Option<UnicodePolicy>,
    /// Prompt-injection and jailbreak screening: `block` (400 `input_rejected`; default),
    /// `flag` (pass, log and count), or `off`.
    pub injection: Option<InjectionPolicy>,
    /// Score from which a prompt counts as an attack; default the model's calibrated
    /// threshold (1% false positives on held-out benign prompts).
    pub injection_threshold: Option<f32>,
}

impl GuardSpec {
    pub fn overridden_by(&self, over: &GuardSpec) -> GuardSpec {
        GuardSpec {
            unicode: over.unicode.or(self.unicode),
            injection: over.injection.or(self.injection),
            injection_threshold: over.injection_threshold.or(self.injection_threshold),
        }
    }
}

/// The global `[guard]` section: defaults plus where the guards run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// As in [`GuardSpec`].
    #[serde(default)]
    pub unicode: Option<UnicodePolicy>,
    #[serde(default)]
    pub injection: Option<InjectionPolicy>,
    #[serde(default)]
    pub injection_threshold: Option<f32>,
    /// Run the input guards on the internal listener too. Default true.
    #[serde(default = "yes")]
    pub internal_listener: bool,
}

impl Guard {
    /// The global defaults as a spec.
    pub fn spec(&self) -> GuardSpec {
        GuardSpec {
            unicode: self.unicode,
            injection: self.injection,
            injection_threshold: self.injection_threshold,
        }
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            unicode: None,
            injection: None,
            injection_threshold: None,
            internal_listener: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnicodePolicy {
    #[default]
    Strip,
    Reject,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InjectionPolicy {
    #[default]
    Block,
    Flag,
    Off,
}
