//! Input guard settings: Unicode sanitation and injection screening, globally, per plan and
//! per model.

use serde::Deserialize;

/// `[guard]`, `[plans.NAME.guard]` or `guard = {...}` on a model: fields left out fall back
/// to the wider setting (model over plan over global).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
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
    /// Personal data and secrets in answers: `redact` (default), `block` (502
    /// `output_rejected`; a stream ends with that error instead of the item), or `off`.
    pub output: Option<OutputPolicy>,
    /// Extraction-enabling parameters. `logprobs`: allowed at all (default true).
    pub logprobs: Option<bool>,
    /// Highest `top_logprobs` (completions: `logprobs` count) accepted. Default 5.
    pub max_top_logprobs: Option<u64>,
    /// Accept `logit_bias` in the same request as logprobs; together they reveal the model's
    /// final layer. Default false.
    pub logit_bias_with_logprobs: Option<bool>,
    /// Highest `n` (choices per request). Default 8.
    pub max_n: Option<u64>,
    /// Accept `echo` (completions echo the prompt, with its logprobs). Default false.
    pub echo: Option<bool>,
    /// Accept `seed` (reproducible sampling). Default true.
    pub seed: Option<bool>,
    /// Top-level request fields the endpoint does not know: `reject` (400
    /// `unknown_parameter`; default) or `strip` them before forwarding.
    pub unknown_fields: Option<UnknownFields>,
    /// Most messages in a chat request. Default unlimited.
    pub max_messages: Option<u64>,
    /// Most characters in one message's text. Default unlimited.
    pub max_message_chars: Option<u64>,
    /// Most characters of prompt text in one request. Default unlimited.
    pub max_total_chars: Option<u64>,
    /// Highest `max_tokens` / `max_completion_tokens` accepted. Default unlimited.
    pub max_output_tokens: Option<u64>,
    /// Most images in one request. Default unlimited.
    pub max_images: Option<u64>,
    /// Largest image sent inline as a data URL, in bytes of the URL. Default unlimited.
    pub max_image_bytes: Option<u64>,
    /// Most audio and file parts in one request. Default unlimited.
    pub max_attachments: Option<u64>,
    /// Largest audio or file part sent inline, in bytes of its data. Default unlimited.
    pub max_attachment_bytes: Option<u64>,
    /// Function names a request may declare as tools; unset allows any.
    pub allowed_tools: Option<Vec<String>>,
    /// A secret marker placed in system prompts; an answer containing it is leaking the
    /// prompt. Handled by `prompt_leak` (block unless set to `flag`).
    pub canary: Option<String>,
    /// Answers that repeat `prompt_leak_chars` or more characters of the request's system
    /// prompt verbatim (or contain the canary): `block` (502 `output_rejected`), `flag` (log
    /// and count), or `off` (default; the canary is still blocked).
    pub prompt_leak: Option<LeakPolicy>,
    /// Shortest verbatim span that counts as a leak. Default 60.
    pub prompt_leak_chars: Option<u64>,
    /// Forensic watermark in generated prose (`on` or `off`, the default): a keyed choice
    /// among equivalent words that lets the operator prove a model was distilled from these
    /// answers (see the README). Internal keys are never marked by the `[guard]` default,
    /// only by a plan, tenant or model that turns it on.
    pub watermark: Option<WatermarkPolicy>,
}

impl GuardSpec {
    pub fn overridden_by(&self, over: &GuardSpec) -> GuardSpec {
        GuardSpec {
            unicode: over.unicode.or(self.unicode),
            injection: over.injection.or(self.injection),
            injection_threshold: over.injection_threshold.or(self.injection_threshold),
            output: over.output.or(self.output),
            logprobs: over.logprobs.or(self.logprobs),
            max_top_logprobs: over.max_top_logprobs.or(self.max_top_logprobs),
            logit_bias_with_logprobs: over
                .logit_bias_with_logprobs
                .or(self.logit_bias_with_logprobs),
            max_n: over.max_n.or(self.max_n),
            echo: over.echo.or(self.echo),
            seed: over.seed.or(self.seed),
            unknown_fields: over.unknown_fields.or(self.unknown_fields),
            max_messages: over.max_messages.or(self.max_messages),
            max_message_chars: over.max_message_chars.or(self.max_message_chars),
            max_total_chars: over.max_total_chars.or(self.max_total_chars),
            max_output_tokens: over.max_output_tokens.or(self.max_output_tokens),
            max_images: over.max_images.or(self.max_images),
            max_image_bytes: over.max_image_bytes.or(self.max_image_bytes),
            max_attachments: over.max_attachments.or(self.max_attachments),
            max_attachment_bytes: over.max_attachment_bytes.or(self.max_attachment_bytes),
            allowed_tools: over
                .allowed_tools
                .clone()
                .or_else(|| self.allowed_tools.clone()),
            canary: over.canary.clone().or_else(|| self.canary.clone()),
            prompt_leak: over.prompt_leak.or(self.prompt_leak),
            prompt_leak_chars: over.prompt_leak_chars.or(self.prompt_leak_chars),
            watermark: over.watermark.or(self.watermark),
        }
    }
}

/// The global `[guard]` section: defaults plus where the guards run.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    // The fields shared with `GuardSpec` are documented there (the reference shows them).
    #[serde(default)]
    pub unicode: Option<UnicodePolicy>,
    #[serde(default)]
    pub injection: Option<InjectionPolicy>,
    #[serde(default)]
    pub injection_threshold: Option<f32>,
    #[serde(default)]
    pub output: Option<OutputPolicy>,
    #[serde(default)]
    pub logprobs: Option<bool>,
    #[serde(default)]
    pub max_top_logprobs: Option<u64>,
    #[serde(default)]
    pub logit_bias_with_logprobs: Option<bool>,
    #[serde(default)]
    pub max_n: Option<u64>,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub seed: Option<bool>,
    #[serde(default)]
    pub unknown_fields: Option<UnknownFields>,
    #[serde(default)]
    pub max_messages: Option<u64>,
    #[serde(default)]
    pub max_message_chars: Option<u64>,
    #[serde(default)]
    pub max_total_chars: Option<u64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub max_images: Option<u64>,
    #[serde(default)]
    pub max_image_bytes: Option<u64>,
    #[serde(default)]
    pub max_attachments: Option<u64>,
    #[serde(default)]
    pub max_attachment_bytes: Option<u64>,
    #[serde(default)]
    pub allowed_tools: Option<Vec<String>>,
    #[serde(default)]
    pub canary: Option<String>,
    #[serde(default)]
    pub prompt_leak: Option<LeakPolicy>,
    #[serde(default)]
    pub prompt_leak_chars: Option<u64>,
    #[serde(default)]
    pub watermark: Option<WatermarkPolicy>,
    /// Environment variable with the watermark secrets, newest first:
    /// `version:secret[,version:secret...]`, each secret at least 16 characters. Old
    /// versions stay for detection. Default `PORTCULLIS_WATERMARK_SECRETS`.
    #[serde(default = "watermark_secrets_env")]
    pub watermark_secrets_env: String,
    /// Run the guards on the internal listener too. Default true; false passes internal
    /// traffic through unscreened and unfiltered.
    #[serde(default = "yes")]
    pub internal_listener: bool,
    /// Pass the upstream's `system_fingerprint` on (it identifies the serving configuration).
    /// Default false.
    #[serde(default)]
    pub system_fingerprint: bool,
}

impl Guard {
    /// The global defaults as a spec.
    pub fn spec(&self) -> GuardSpec {
        GuardSpec {
            unicode: self.unicode,
            injection: self.injection,
            injection_threshold: self.injection_threshold,
            output: self.output,
            logprobs: self.logprobs,
            max_top_logprobs: self.max_top_logprobs,
            logit_bias_with_logprobs: self.logit_bias_with_logprobs,
            max_n: self.max_n,
            echo: self.echo,
            seed: self.seed,
            unknown_fields: self.unknown_fields,
            max_messages: self.max_messages,
            max_message_chars: self.max_message_chars,
            max_total_chars: self.max_total_chars,
            max_output_tokens: self.max_output_tokens,
            max_images: self.max_images,
            max_image_bytes: self.max_image_bytes,
            max_attachments: self.max_attachments,
            max_attachment_bytes: self.max_attachment_bytes,
            allowed_tools: self.allowed_tools.clone(),
            canary: self.canary.clone(),
            prompt_leak: self.prompt_leak,
            prompt_leak_chars: self.prompt_leak_chars,
            watermark: self.watermark,
        }
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            unicode: None,
            injection: None,
            injection_threshold: None,
            output: None,
            logprobs: None,
            max_top_logprobs: None,
            logit_bias_with_logprobs: None,
            max_n: None,
            echo: None,
            seed: None,
            unknown_fields: None,
            max_messages: None,
            max_message_chars: None,
            max_total_chars: None,
            max_output_tokens: None,
            max_images: None,
            max_image_bytes: None,
            max_attachments: None,
            max_attachment_bytes: None,
            allowed_tools: None,
            canary: None,
            prompt_leak: None,
            prompt_leak_chars: None,
            watermark: None,
            watermark_secrets_env: watermark_secrets_env(),
            internal_listener: true,
            system_fingerprint: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum UnicodePolicy {
    #[default]
    Strip,
    Reject,
    Off,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum InjectionPolicy {
    #[default]
    Block,
    Flag,
    Off,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum OutputPolicy {
    #[default]
    Redact,
    Block,
    Off,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    #[default]
    Reject,
    Strip,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum WatermarkPolicy {
    On,
    #[default]
    Off,
}

fn watermark_secrets_env() -> String {
    "PORTCULLIS_WATERMARK_SECRETS".to_owned()
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum LeakPolicy {
    Block,
    Flag,
    #[default]
    Off,
}
