//! Which chunks of a job this process computes: `--shard I/N`, a SLURM job array's task, or a
//! Kubernetes Indexed Job's completion index.

use firelight_core::{Error, Result};

/// Shard `index` of `count`: the chunks whose number is `index` modulo `count` (round robin, so
/// shards get about the same work whatever the order of the samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards the job is split into.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The whole job in one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; fails unless `index < count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            return Err(Error::parameter(
                "shard",
                "0",
                "a job has at least one shard",
            ));
        }
        if index >= count {
            return Err(Error::parameter(
                "shard",
                format!("{index}/{count}"),
                format!(
                    "shards are numbered from 0: the last of {count} is {}",
                    count - 1
                ),
            ));
        }
        Ok(Self { index, count })
    }

    /// `I/N`, as `--shard` takes it.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::parameter("shard", text, "write the shard as I/N, e.g. 0/4");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index = index.trim().parse().map_err(|_| bad())?;
        let count = count.trim().parse().map_err(|_| bad())?;
        Self::new(index, count)
    }

    /// The shard a scheduler gave this process through its environment: a SLURM job array
    /// (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, with `SLURM_ARRAY_TASK_MIN` and
    /// `SLURM_ARRAY_TASK_STEP` for arrays such as `--array=1-10:3`) or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`; Kubernetes does not say how many completions there are, so
    /// `count` must: the Job's `completions`). `None` when neither is set.
    pub fn from_env(count: Option<usize>) -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok(), count)
    }

    /// [`Shard::from_env`] with the variables read by `var`.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Option<Self>> {
        let number = |name: &'static str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(value) => value.trim().parse().map(Some).map_err(|_| {
                    Error::parameter(name, &value, "a scheduler's task number is a whole number")
                }),
            }
        };
        if let Some(task) = number("SLURM_ARRAY_TASK_ID")? {
            let tasks = match number("SLURM_ARRAY_TASK_COUNT")? {
                Some(tasks) => tasks,
                None => count.ok_or_else(|| {
                    Error::parameter(
                        "SLURM_ARRAY_TASK_COUNT",
                        "unset",
                        "SLURM_ARRAY_TASK_ID is set but not the array's size: pass --shards N",
                    )
                })?,
            };
            let first = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            if task < first || (task - first) % step != 0 {
                return Err(Error::parameter(
                    "SLURM_ARRAY_TASK_ID",
                    task,
                    format!("not a task of the array from {first} in steps of {step}"),
                ));
            }
            if let Some(count) = count.filter(|&c| c != tasks) {
                return Err(Error::parameter(
                    "shards",
                    count,
                    format!("the SLURM array has {tasks} tasks"),
                ));
            }
            return Self::new((task - first) / step, tasks).map(Some);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = count.ok_or_else(|| {
                Error::parameter(
                    "shards",
                    "unset",
                    "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not how many shards \
                     there are: pass --shards N, the Job's completions",
                )
            })?;
            return Self::new(index, count).map(Some);
        }
        Ok(None)
    }

    /// Whether chunk `chunk` is this shard's.
    pub fn owns(&self, chunk: usize) -> bool {
        chunk % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn shards_parse_and_refuse_an_index_out_of_range() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        let error = Shard::parse("4/4").unwrap_err().to_string();
        assert!(error.contains("the last of 4 is 3"), "{error}");
        assert!(Shard::parse("1-4").is_err());
        assert!(Shard::parse("0/0").is_err());
    }

    #[test]
    fn slurm_arrays_with_an_offset_and_a_step_number_their_tasks_from_zero() {
        let env = vars(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "3"),
        ]);
        assert_eq!(
            Shard::from_vars(env, None).unwrap(),
            Some(Shard { index: 2, count: 4 })
        );
        let env = vars(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(
            Shard::from_vars(env, None).is_err(),
            "task 3 of 3 is out of range"
        );
    }

    #[test]
    fn kubernetes_completion_indexes_need_the_number_of_shards() {
        let env = vars(&[("JOB_COMPLETION_INDEX", "1")]);
        assert_eq!(
            Shard::from_vars(&env, Some(3)).unwrap(),
            Some(Shard { index: 1, count: 3 })
        );
        let error = Shard::from_vars(&env, None).unwrap_err().to_string();
        assert!(error.contains("--shards"), "{error}");
        assert_eq!(Shard::from_vars(vars(&[]), None).unwrap(), None);
    }

    #[test]
    fn round_robin_gives_every_chunk_to_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        for chunk in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.owns(chunk)).count(), 1);
        }
    }
}
