//! The state's compact binary encoding (see the module docs of [`super`]).

use super::fences::intern_topic;
use super::hll::{HLL_REGISTERS, PaneRegs};
use super::panes::Stat;
use super::spec::{EntityDef, FORMAT_VERSION};
use super::state::EntityState;

pub(super) const MAGIC: u8 = b'w';

impl EntityState {
    /// The state as compact binary (module docs).
    pub fn to_bytes(&self, def: &EntityDef) -> Vec<u8> {
        let nf = def.numeric.len();
        let nd = def.distinct;
        let any_sketched = self.sketched.iter().any(|&s| s);
        let mut out = Vec::with_capacity(64 + self.windows.iter().map(|w| w.heads.len() * (12 + nf * 24)).sum::<usize>());
        out.push(MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&def.fingerprint.to_le_bytes());
        out.extend_from_slice(&self.max_t.to_le_bytes());
        out.extend_from_slice(&self.older.to_le_bytes());
        put_u32(&mut out, self.times.len());
        for t in &self.times {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for d in 0..nd {
            out.push(self.sketched[d] as u8);
            out.extend_from_slice(&self.exact_from[d].to_le_bytes());
            put_u32(&mut out, self.occurrences[d].len());
            for (t, h) in self.occurrences[d].iter() {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
        for w in &self.windows {
            out.extend_from_slice(&w.cur.to_le_bytes());
            out.extend_from_slice(&w.count.to_le_bytes());
            for f in &w.num {
                out.extend_from_slice(&f.n.to_le_bytes());
                out.extend_from_slice(&f.sum.to_le_bytes());
            }
            put_u32(&mut out, w.heads.len());
            for (i, (q, c)) in w.heads.iter().enumerate() {
                out.extend_from_slice(&q.to_le_bytes());
                put_u32(&mut out, *c as usize);
                for k in 0..nf {
                    let s = &w.stats[i * nf + k];
                    put_u32(&mut out, s.n as usize);
                    out.extend_from_slice(&s.sum.to_le_bytes());
                    if def.extremes[k] {
                        out.extend_from_slice(&s.min.to_le_bytes());
                        out.extend_from_slice(&s.max.to_le_bytes());
                    }
                }
                if any_sketched {
                    for d in 0..nd {
                        put_regs(&mut out, &w.regs[i * nd + d].to_dense());
                    }
                }
            }
        }
        put_u32(&mut out, self.fences.len());
        for (topic, partition, offset) in &self.fences {
            out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
            out.extend_from_slice(topic.as_bytes());
            out.extend_from_slice(&partition.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        out
    }

    /// Reads a state written by [`EntityState::to_bytes`] (or by the previous format, 3,
    /// which lacks the shadow mark of sketched fields), refusing one written for another
    /// layout or format.
    pub fn from_bytes(def: &EntityDef, bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, at: 0 };
        let magic = r.take(1)?[0];
        let version = r.take(1)?[0];
        if magic != MAGIC || !(version == FORMAT_VERSION || version == 3) {
            return Err(format!(
                "state of kind {:?} has format {magic}/{version}, this weir reads {MAGIC}/3 and {MAGIC}/{FORMAT_VERSION}",
                def.kind
            ));
        }
        let fingerprint = r.u32()?;
        let expected = if version == FORMAT_VERSION { def.fingerprint } else { def.fingerprint_of_format(version) };
        if fingerprint != expected {
            return Err(format!(
                "state of kind {:?} has layout fingerprint {fingerprint}, the configured definition has {expected}: it was written under other feature settings (windows, lateness, fields)",
                def.kind
            ));
        }
        let nf = def.numeric.len();
        let nd = def.distinct;
        let mut s = EntityState::new(def);
        s.max_t = r.i64()?;
        s.older = r.i64()?;
        let n = r.count(8)?;
        for _ in 0..n {
            s.times.push_back(r.i64()?);
        }
        for d in 0..nd {
            s.sketched[d] = r.take(1)?[0] != 0;
            s.exact_from[d] = if version == 3 {
                // Format 3 kept no shadow: it is complete only for what comes next.
                if s.sketched[d] { s.max_t } else { i64::MIN }
            } else {
                r.i64()?
            };
            let n = r.count(16)?;
            let mut occ = Vec::with_capacity(n);
            for _ in 0..n {
                occ.push((r.i64()?, r.u64()?));
            }
            s.occurrences[d] = occ.into();
        }
        let any_sketched = s.sketched.iter().any(|&x| x);
        for (w, _) in s.windows.iter_mut().zip(&def.windows) {
            if any_sketched {
                w.sketch = vec![None; nd];
            }
            w.cur = r.i64()?;
            w.count = r.f64()?;
            for k in 0..nf {
                (w.num[k].n, w.num[k].sum) = (r.f64()?, r.f64()?);
            }
            let panes = r.count(12)?;
            for _ in 0..panes {
                let q = r.i64()?;
                if w.heads.last().is_some_and(|h| h.0 >= q) {
                    return Err(format!("state of kind {:?}: panes out of order", def.kind));
                }
                w.heads.push((q, f64::from(r.u32()?)));
                for k in 0..nf {
                    let n = f64::from(r.u32()?);
                    let sum = r.f64()?;
                    let (min, max) = if def.extremes[k] { (r.f64()?, r.f64()?) } else { (f64::INFINITY, f64::NEG_INFINITY) };
                    w.stats.push(Stat { n, sum, min, max });
                }
                if any_sketched {
                    for _ in 0..nd {
                        w.regs.push_back(PaneRegs::from_dense(&r.regs()?));
                    }
                }
            }
        }
        let n = r.count(14)?;
        for _ in 0..n {
            let len = u16::from_le_bytes(r.take(2)?.try_into().unwrap_or([0; 2])) as usize;
            let topic = intern_topic(std::str::from_utf8(r.take(len)?).map_err(|_| "fence topic is not utf-8".to_string())?);
            let partition = r.u32()? as i32;
            s.fences.push((topic, partition, r.i64()?));
        }
        if r.at != bytes.len() {
            return Err(format!("state of kind {:?} has {} trailing bytes", def.kind, bytes.len() - r.at));
        }
        Ok(s)
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Registers: a count of non-zero ones then (index, value) pairs when that is shorter,
/// else 255 then all 256.
fn put_regs(out: &mut Vec<u8>, regs: &[u8; HLL_REGISTERS]) {
    let nonzero = regs.iter().filter(|&&r| r != 0).count();
    if nonzero < 127 {
        out.push(nonzero as u8);
        for (i, &r) in regs.iter().enumerate() {
            if r != 0 {
                out.push(i as u8);
                out.push(r);
            }
        }
    } else {
        out.push(255);
        out.extend_from_slice(regs);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("state is truncated at byte {} (needs {n} more)", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn eight(&mut self) -> Result<[u8; 8], String> {
        Ok(self.take(8)?.try_into().unwrap_or([0; 8]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.eight()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.eight()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.eight()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or([0; 4])))
    }
    /// A count of items of at least `min_size` bytes each, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.bytes.len() - self.at {
            return Err(format!("state is truncated: {n} items at byte {}", self.at));
        }
        Ok(n)
    }
    fn regs(&mut self) -> Result<[u8; HLL_REGISTERS], String> {
        let mut regs = [0u8; HLL_REGISTERS];
        let n = self.take(1)?[0];
        if n == 255 {
            regs.copy_from_slice(self.take(HLL_REGISTERS)?);
        } else {
            for pair in self.take(2 * n as usize)?.chunks_exact(2) {
                regs[pair[0] as usize] = pair[1];
            }
        }
        Ok(regs)
    }
}
