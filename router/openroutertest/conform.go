package openroutertest

import (
	"encoding/json"
	"errors"
	"slices"
)

// conformCatalog returns the catalog as the chat spec's ModelsListResponse
// has it: every model with the fields the spec requires (supported_voices,
// links and the others a snapshot from before they existed lacks), and
// the list's total_count and links. A snapshot of GET /models can be
// served as it was taken, and clients that validate responses (the
// official SDKs) still accept it.
func conformCatalog(body []byte) ([]byte, error) {
	var w map[string]json.RawMessage
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	var models []map[string]any
	if err := json.Unmarshal(w["data"], &models); err != nil {
		return nil, errors.New(`"data" is not a list of models`)
	}
	for _, m := range models {
		id, _ := m["id"].(string)
		def := map[string]any{
			"canonical_slug": id, "name": id, "created": 0, "context_length": nil,
			"per_request_limits": nil, "supported_parameters": []any{}, "default_parameters": nil,
			"supported_voices": nil, "links": map[string]any{"details": "https://openrouter.ai/" + id},
		}
		for k, v := range def {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
		if _, ok := m["pricing"].(map[string]any); !ok {
			m["pricing"] = map[string]any{"prompt": "0", "completion": "0"}
		}
		if _, ok := m["top_provider"].(map[string]any); !ok {
			m["top_provider"] = map[string]any{"is_moderated": false}
		} else if tp := m["top_provider"].(map[string]any); tp["is_moderated"] == nil {
			tp["is_moderated"] = false
		}
		arch, ok := m["architecture"].(map[string]any)
		if !ok {
			arch = map[string]any{}
			m["architecture"] = arch
		}
		for k, v := range map[string]any{"modality": "text->text", "input_modalities": []any{"text"}, "output_modalities": []any{"text"}} {
			if _, ok := arch[k]; !ok {
				arch[k] = v
			}
		}
	}
	out := map[string]any{"data": models, "total_count": len(models), "links": map[string]any{"next": nil}}
	return json.Marshal(out)
}

// filterCatalog keeps the models whose output modalities include one of
// want.
func filterCatalog(body []byte, want []string) ([]byte, error) {
	var w struct {
		Data  []json.RawMessage `json:"data"`
		Links json.RawMessage   `json:"links"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	var kept []json.RawMessage
	for _, raw := range w.Data {
		var m struct {
			Architecture struct {
				OutputModalities []string `json:"output_modalities"`
			} `json:"architecture"`
		}
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		for _, o := range m.Architecture.OutputModalities {
			if slices.Contains(want, o) {
				kept = append(kept, raw)
				break
			}
		}
	}
	return json.Marshal(map[string]any{"data": kept, "total_count": len(kept), "links": w.Links})
}
