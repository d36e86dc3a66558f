package record

// Meta is machine.json: what the run measured on, and how it was run.
// Everything a reader needs to judge a result and reproduce it.
type Meta struct {
	MachineID string   `json:"machine_id"`
	Machine   Machine  `json:"machine"`
	Software  Software `json:"software"`
	Run       RunInfo  `json:"run"`
	Load      Load     `json:"load"`
	// Failures are the correctness checks that failed (acknowledged events
	// missing from the database, ...). A published run has none.
	Failures []string `json:"failures,omitempty"`
}

// Machine is the hardware and operating system.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memory_bytes"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Kernel      string `json:"kernel"`
	// DBDir is where the databases lived; Filesystem, Device and
	// MountOptions describe its mount.
	DBDir        string `json:"db_dir"`
	Filesystem   string `json:"filesystem"`
	Device       string `json:"device,omitempty"`
	MountOptions string `json:"mount_options,omitempty"`
	// FsyncPerSec is the durability ceiling: 4 KiB appends, each followed by
	// fsync, in a plain Go loop on DBDir.
	FsyncPerSec float64 `json:"fsync_per_sec"`
}

// Software is what ran.
type Software struct {
	Go            string `json:"go"`
	SQLite        string `json:"sqlite"`
	SQLiteDriver  string `json:"sqlite_driver"`
	Vegeta        string `json:"vegeta,omitempty"`
	GitRevision   string `json:"git_revision"`
	GitDirty      bool   `json:"git_dirty"`
	CollectorPath string `json:"collector_binary,omitempty"`
}

// RunInfo is how the harness was run.
type RunInfo struct {
	CommandLine []string `json:"command_line"`
	Profile     string   `json:"profile"` // full, quick or gate
	Experiments []string `json:"experiments"`
	Seed        uint64   `json:"seed"`
	Reps        int      `json:"reps"`   // counted repetitions per cell
	Warmup      int      `json:"warmup"` // leading repetitions measured and dropped
	// ExperimentReps holds the experiments that plan their own repetitions
	// (long ones: a crash torture, a soak): name -> [counted, warm-up].
	ExperimentReps map[string][2]int `json:"experiment_reps,omitempty"`
	Cells          int               `json:"cells"`   // cells per repetition, all experiments
	Started        string            `json:"started"` // RFC 3339, UTC
	Finished       string            `json:"finished,omitempty"`
	Seconds        float64           `json:"seconds,omitempty"`
	Complete       bool              `json:"complete"` // every planned repetition ran
	// Done lists the experiments whose every planned repetition ran, in
	// the order they ended: a run stopped by a later experiment's failure
	// still stands for the ones it finished.
	Done []string `json:"done,omitempty"`
	// Plan describes each experiment's cells: parameters and durations.
	Plan map[string]string `json:"plan,omitempty"`
}

// Load is how busy the machine was apart from the harness.
type Load struct {
	// LoadAvg is /proc/loadavg (1, 5, 15 minutes) at the start.
	LoadAvg [3]float64 `json:"loadavg_start"`
	// BusyAtStart is the fraction of all CPUs busy during a short idle
	// sample before the run started (the harness itself doing nothing).
	BusyAtStart float64 `json:"busy_at_start"`
	// ForeignCPU is CPU time used during the run by anything other than the
	// harness and the collectors it started, as a fraction of all CPUs.
	ForeignCPU float64 `json:"foreign_cpu"`
	// Busy is set when the run was made on a busy machine (-allow-busy);
	// Note says why.
	Busy bool   `json:"busy"`
	Note string `json:"note,omitempty"`
}
