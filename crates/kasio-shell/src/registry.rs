//! The Schema Registry handle: each method starts a call in the sans-IO client and
//! returns its [`RegistryCall`].

use crate::{
    call::Call,
    driver::{Core, Handle, Runtime, Shared},
    pending::{Complete, Pending},
};
use event_listener::Event;
use kasio_core::ConfigError;
use kasio_registry::{
    Answer, CallId, Compatibility, CompatibilityCheck, RegisteredSchema, Registry, RegistryConfig,
    RegistryError, Request, Schema, Version,
};
use std::{collections::HashMap, marker::PhantomData, sync::Arc, time::Instant};

type Outcome = Result<Answer, RegistryError>;
type Reply = Complete<Outcome>;

pub(crate) struct RegistryCore {
    core: Registry,
    waiters: HashMap<CallId, Reply>,
    closing: bool,
}

impl Core for RegistryCore {
    type Deferred = Vec<(Reply, Outcome)>;

    type Client = Registry;

    fn client(&mut self) -> &mut Registry {
        &mut self.core
    }
    fn take_events(&mut self, done: &mut Self::Deferred, _now: Instant) -> bool {
        while let Some((id, answer)) = self.core.poll_answer() {
            if let Some(reply) = self.waiters.remove(&id) {
                done.push((reply, answer));
            }
        }
        self.closing
    }
    fn abandon(&mut self, _now: Instant) {
        self.core.close();
        self.closing = true;
    }
    fn complete(done: &mut Self::Deferred, _ready: &Event) {
        for (reply, answer) in done.drain(..) {
            let _ = reply.send(answer);
        }
    }
}

/// A Schema Registry call under way: `.await` it on an async runtime, or
/// [`wait`](Call::wait) for it on threads.
pub type RegistryCall<T, R> = Call<T, R, Answer, RegistryError>;

/// A Schema Registry client (Confluent's REST API) whose driver runs on runtime `R`: the
/// sans-IO [`Registry`] behind a lock, its HTTP moved by the same driver as a producer's
/// bytes. Clones share one client, so its caches and merged misses serve every clone:
/// many consumers asking for one schema id at once make one request.
///
/// ```no_run
/// # async fn demo<R: kasio_shell::AsyncRuntime>() -> Result<(), Box<dyn std::error::Error>> {
/// use kasio_registry::Schema;
/// use kasio_shell::SchemaRegistry;
/// let registry = SchemaRegistry::<R>::from_properties([("url", "http://localhost:8081")])?;
/// let id = registry.register("orders-value", Schema::avro(r#""string""#)).await?;
/// let schema = registry.schema_by_id(id).await?;
/// assert_eq!(schema.text, r#""string""#);
/// # Ok(()) }
/// ```
pub struct SchemaRegistry<R> {
    shared: Arc<Handle<RegistryCore>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for SchemaRegistry<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            runtime: PhantomData,
        }
    }
}

impl<R> std::fmt::Debug for SchemaRegistry<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry").finish_non_exhaustive()
    }
}

impl<R: Runtime> SchemaRegistry<R> {
    /// Starts a registry client and its driver.
    ///
    /// # Errors
    /// [`ConfigError`] if no URL is set or TLS settings do not load.
    pub fn new(config: RegistryConfig) -> Result<Self, ConfigError> {
        let core = Registry::new(config, R::now(), R::seed())?;
        Ok(Self {
            shared: Shared::start::<R>(RegistryCore {
                core,
                waiters: HashMap::new(),
                closing: false,
            }),
            runtime: PhantomData,
        })
    }

    /// Starts a registry client from confluent-kafka's property names (`url`,
    /// `basic.auth.user.info`, ...).
    ///
    /// # Errors
    /// [`ConfigError`] naming an unknown key or bad value.
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Self::new(RegistryConfig::from_properties(props)?)
    }
}

macro_rules! answer {
    ($variant:ident) => {
        |answer| match answer {
            Answer::$variant(v) => Ok(v),
            other => Err(RegistryError::Malformed(format!(
                "unexpected answer {other:.80?}"
            ))),
        }
    };
}

impl<R> SchemaRegistry<R> {
    /// Starts any call; its raw [`Answer`].
    pub fn request(&self, request: Request) -> RegistryCall<Answer, R> {
        self.call(request, Ok)
    }

    fn call<T>(
        &self,
        request: Request,
        unwrap: fn(Answer) -> Result<T, RegistryError>,
    ) -> RegistryCall<T, R> {
        let (tx, pending) = Pending::channel(|| Err(RegistryError::Closed));
        let pending = {
            let mut inner = self.shared.lock();
            if inner.closing {
                Pending::ready(Err(RegistryError::Closed))
            } else {
                let id = inner.core.request(request, self.shared.now());
                inner.waiters.insert(id, tx);
                pending
            }
        };
        self.shared.wake();
        Call::new(pending, unwrap)
    }

    /// The schema with `id`, if the client holds it: no call, no wait (what a
    /// deserializer asks per record).
    #[must_use]
    pub fn cached_schema(&self, id: u32) -> Option<Arc<Schema>> {
        self.shared.lock().core.schema(id)
    }

    /// The schema registered as `subject`'s `version`, if the client holds it (a fetch
    /// by id fetches the schemas it references): no call, no wait.
    #[must_use]
    pub fn cached_reference(&self, subject: &str, version: i32) -> Option<Arc<Schema>> {
        self.shared.lock().core.referenced(subject, version)
    }

    /// How many HTTP requests the client has written (retries included).
    #[must_use]
    pub fn requests_sent(&self) -> u64 {
        self.shared.lock().core.requests_sent()
    }

    /// The schema with `id` (cached after the first call).
    pub fn schema_by_id(&self, id: u32) -> RegistryCall<Arc<Schema>, R> {
        self.call(Request::SchemaById { id }, answer!(Schema))
    }

    /// Registers `schema` under `subject` (or finds it there); its id.
    pub fn register(&self, subject: &str, schema: Schema) -> RegistryCall<u32, R> {
        let request = Request::Register {
            subject: subject.into(),
            schema,
            normalize: false,
        };
        self.call(request, answer!(Id))
    }

    /// Finds `schema` among `subject`'s versions.
    pub fn lookup(&self, subject: &str, schema: Schema) -> RegistryCall<RegisteredSchema, R> {
        let request = Request::Lookup {
            subject: subject.into(),
            schema,
        };
        self.call(request, answer!(Registered))
    }

    /// A version of `subject` ([`Version::Latest`] for the newest).
    pub fn version(&self, subject: &str, version: Version) -> RegistryCall<RegisteredSchema, R> {
        let request = Request::Version {
            subject: subject.into(),
            version,
        };
        self.call(request, answer!(Registered))
    }

    /// `subject`'s version numbers.
    pub fn versions(&self, subject: &str) -> RegistryCall<Vec<i32>, R> {
        let request = Request::Versions {
            subject: subject.into(),
        };
        self.call(request, answer!(Versions))
    }

    /// Every subject.
    pub fn subjects(&self) -> RegistryCall<Vec<String>, R> {
        self.call(Request::Subjects, answer!(Subjects))
    }

    /// Whether `subject` would accept `schema`, checked against its latest version.
    pub fn test_compatibility(
        &self,
        subject: &str,
        schema: Schema,
    ) -> RegistryCall<CompatibilityCheck, R> {
        let request = Request::TestCompatibility {
            subject: subject.into(),
            version: Version::Latest,
            schema,
        };
        self.call(request, answer!(Compatibility))
    }

    /// The compatibility level of `subject`, or the global one.
    pub fn compatibility(&self, subject: Option<&str>) -> RegistryCall<Compatibility, R> {
        let request = Request::Config {
            subject: subject.map(String::from),
        };
        self.call(request, answer!(Level))
    }

    /// Sets the compatibility level of `subject`, or the global one.
    pub fn set_compatibility(
        &self,
        subject: Option<&str>,
        level: Compatibility,
    ) -> RegistryCall<Compatibility, R> {
        let request = Request::SetConfig {
            subject: subject.map(String::from),
            level,
        };
        self.call(request, answer!(Level))
    }

    /// Deletes `subject` (soft, or `permanent` after a soft delete); the versions deleted.
    pub fn delete_subject(&self, subject: &str, permanent: bool) -> RegistryCall<Vec<i32>, R> {
        let request = Request::DeleteSubject {
            subject: subject.into(),
            permanent,
        };
        self.call(request, answer!(Versions))
    }

    /// Deletes one version of `subject`; its number.
    pub fn delete_version(
        &self,
        subject: &str,
        version: Version,
        permanent: bool,
    ) -> RegistryCall<i32, R> {
        let request = Request::DeleteVersion {
            subject: subject.into(),
            version,
            permanent,
        };
        self.call(request, answer!(Version))
    }

    /// The ids of the schemas that reference a version of `subject`.
    pub fn referenced_by(&self, subject: &str, version: Version) -> RegistryCall<Vec<u32>, R> {
        let request = Request::ReferencedBy {
            subject: subject.into(),
            version,
        };
        self.call(request, answer!(Ids))
    }

    /// Ends the calls under way with [`RegistryError::Closed`] and stops the driver;
    /// completes once it has.
    pub fn close(&self) -> Pending<(), R> {
        let mut inner = self.shared.lock();
        inner.core.close();
        inner.closing = true;
        drop(inner);
        let done = self.shared.finished();
        self.shared.wake();
        done
    }
}
