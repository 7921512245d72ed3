package router

// UseKeywordClassifier makes r classify with the first router's keyword
// scan (classify_v1_test.go): the baseline the evaluation compares with.
func UseKeywordClassifier(r *Router) { r.baseline = classifyV1 }
