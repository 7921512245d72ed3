package router_test

import (
	"context"
	"encoding/base64"
	"math"
	"testing"

	"github.com/orchat/orchat/bot"
	"github.com/orchat/orchat/router"
	"github.com/orchat/orchat/router/openroutertest"
)

// twoPages is a PDF with two page objects (and the /Pages tree, which is
// not a page).
var twoPages = "data:application/pdf;base64," + base64.StdEncoding.EncodeToString([]byte(
	"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >> endobj\n"+
		"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n4 0 obj <</Type/Page /Parent 2 0 R>> endobj\n%%EOF\n"))

// A PDF goes to any model: OpenRouter's file parser reads it for a model
// that cannot ("This feature works on any model on OpenRouter", its PDF
// inputs documentation), except with the "native" engine, where only
// file-capable models may get it; mistral-ocr is held and billed by the
// page, so the member pays what the host is billed.
func TestPDFToAnyModel(t *testing.T) {
	const textOnly = "deepseek/deepseek-chat-v3.1" // input modalities: text
	ask := bot.PlanRequest{Identity: "console:alice", Model: textOnly, Available: 1_000_000, Messages: []bot.ChatMessage{
		{Role: bot.RoleUser, Content: "what does this say?", Files: []bot.FilePart{{Name: "two.pdf", Data: twoPages, Size: 300, Tokens: 400}}},
	}}
	if n := router.PDFPages(ask.Messages[0].Files[0]); n != 2 {
		t.Fatalf("PDFPages=%d, want the 2 page objects", n)
	}
	plans := map[string]bot.Plan{}
	for _, engine := range []string{"pdf-text", "mistral-ocr"} {
		t.Run(engine, func(t *testing.T) {
			sim := MustSim(t, openroutertest.Options{})
			r := MustRouter(t, sim.URL(), func(c *router.Config) { c.PDFEngine = engine })
			plan, err := r.Plan(context.Background(), ask)
			if err != nil {
				t.Fatalf("a PDF for %s with %s: %v; OpenRouter parses it for any model", textOnly, engine, err)
			}
			if plan.Model != textOnly {
				t.Fatalf("planned %s, want the named %s", plan.Model, textOnly)
			}
			plans[engine] = plan
			res, _, err := stream(t, r, plan)
			if err != nil {
				t.Fatalf("the simulator refused the parsed PDF: %v", err)
			}
			if res.Cost > plan.Cost {
				t.Fatalf("charged %d above the hold %d", res.Cost, plan.Cost)
			}
			ocr := 0.0
			if engine == "mistral-ocr" {
				ocr = 2 * router.PDFOCRUSDPerPage
			}
			if res.Usage.CostUSD < ocr {
				t.Fatalf("billed $%f, want at least the OCR's $%f", res.Usage.CostUSD, ocr)
			}
		})
	}
	// The OCR's two pages are in the hold: the same plan holds $0.004 more.
	if text, ocr := plans["pdf-text"], plans["mistral-ocr"]; text.Model != "" && ocr.Model != "" {
		b := router.DefaultConfig().Billing
		if d := ocr.Cost - text.Cost; math.Abs(float64(d-b.FromUSD(2*router.PDFOCRUSDPerPage))) > 1 {
			t.Fatalf("mistral-ocr holds %d more than pdf-text, want the two pages' %d", d, b.FromUSD(2*router.PDFOCRUSDPerPage))
		}
	}
	t.Run("native", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{})
		r := MustRouter(t, sim.URL(), func(c *router.Config) { c.PDFEngine = "native" })
		if _, err := r.Plan(context.Background(), ask); err == nil {
			t.Fatalf("a PDF for the text-only %s with the native engine was planned; only file-capable models read it", textOnly)
		}
		plan := chosenPlan(textOnly)
		plan.Messages = ask.Messages
		if _, _, err := stream(t, r, plan); err == nil {
			t.Fatal("the simulator took a file part for a text-only model with the native engine")
		}
	})
	t.Run("OtherOpenAIServer", func(t *testing.T) {
		sim := MustSim(t, openroutertest.Options{})
		r := MustRouter(t, sim.URL(), func(c *router.Config) { c.API = "openai" })
		if _, err := r.Plan(context.Background(), ask); err == nil {
			t.Fatalf("a PDF for the text-only %s was planned on a server that parses no files", textOnly)
		}
	})
}
