package controller

// SetFailoverStageHook sets the function called after each stage of a
// failover ("readied", "fenced", "switched"); nil removes it. Tests only.
func SetFailoverStageHook(f func(service, stage string)) { failoverStageHook = f }
