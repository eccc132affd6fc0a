//! A backend whose kernel refusals are counted: the status shows them,
//! whichever backend the binary was built with.

use super::{DataMap, DataPath, FilterError, Installed, OneShot};
use std::net::SocketAddr;
use std::time::Duration;

pub struct Counted<B> {
    pub inner: B,
    /// Requests the kernel refused (or that failed on the way) since start.
    pub errors: u64,
}

impl<B> Counted<B> {
    pub fn new(inner: B) -> Self {
        Counted { inner, errors: 0 }
    }

    fn count<T>(&mut self, r: Result<T, FilterError>) -> Result<T, FilterError> {
        if r.is_err() {
            self.errors += 1;
        }
        r
    }
}

impl<B: DataPath> DataPath for Counted<B> {
    fn install(&mut self, old: Option<&DataMap>, new: &DataMap) -> Result<Installed, FilterError> {
        let r = self.inner.install(old, new);
        self.count(r)
    }
    fn remove(&mut self, d: &DataMap) -> Result<(), FilterError> {
        let r = self.inner.remove(d);
        self.count(r)
    }
    fn refresh_every(&self) -> Option<Duration> {
        self.inner.refresh_every()
    }
    fn refresh(&mut self, d: &DataMap) -> Result<bool, FilterError> {
        let r = self.inner.refresh(d);
        self.count(r)
    }
    fn ensure(&mut self) -> Result<bool, FilterError> {
        let r = self.inner.ensure();
        self.count(r)
    }
    fn close(&mut self) -> Result<(), FilterError> {
        let r = self.inner.close();
        self.count(r)
    }
    fn table(&self) -> &str {
        self.inner.table()
    }
    fn owned(&self) -> bool {
        self.inner.owned()
    }
    fn one_shot(&self) -> OneShot {
        self.inner.one_shot()
    }
    fn original_dst(&mut self, client: SocketAddr, local: SocketAddr) -> Option<SocketAddr> {
        self.inner.original_dst(client, local)
    }
}
