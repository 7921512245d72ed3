package tierset

import (
	"strconv"
	"strings"
)

// paragraphs of an ordinary business document per language; Document
// cycles them into numbered sections. The router sizes prompts at three
// bytes per token, so a document of n tokens is about 3n bytes.
var paragraphs = map[string][]string{
	"en": {
		"The committee reviewed the quarterly figures for the northern warehouses. Deliveries rose by four percent, while returns stayed flat; the shortfall in March was traced to a supplier that missed two shipments.",
		"Under clause 7 the tenant must give ninety days' written notice before leaving the premises. Either party may end the agreement early if the other breaches a material term and fails to cure it within thirty days.",
		"Minutes of the meeting: the chair opened at ten. Items discussed were the new rota for weekend support, the budget for the spring offsite and the migration of the billing system, which slipped by one sprint.",
		"Customer feedback in the survey was mostly positive about delivery times but critical of the mobile app, in particular the checkout page, which several respondents described as slow and confusing.",
	},
	"es": {
		"El comité revisó las cifras trimestrales de los almacenes del norte. Las entregas subieron un cuatro por ciento y las devoluciones se mantuvieron; el déficit de marzo se debió a un proveedor que no cumplió dos envíos.",
		"Según la cláusula 7, el arrendatario debe avisar por escrito con noventa días de antelación. Cualquiera de las partes puede rescindir el contrato si la otra incumple una obligación esencial y no lo subsana en treinta días.",
		"Acta de la reunión: la presidenta abrió la sesión a las diez. Se trataron el nuevo turno de soporte de fin de semana, el presupuesto del encuentro de primavera y la migración del sistema de facturación.",
		"Las opiniones de los clientes fueron en general buenas sobre los plazos de entrega, pero críticas con la aplicación móvil, sobre todo con la página de pago, que varios describieron como lenta y confusa.",
	},
	"pt": {
		"O comitê analisou os números trimestrais dos armazéns do norte. As entregas subiram quatro por cento e as devoluções ficaram estáveis; a falta em março veio de um fornecedor que perdeu duas remessas.",
		"Pela cláusula 7, o locatário deve avisar por escrito com noventa dias de antecedência. Qualquer das partes pode rescindir o contrato se a outra descumprir uma obrigação essencial e não a corrigir em trinta dias.",
		"Ata da reunião: a presidente abriu a sessão às dez horas. Foram discutidos o novo rodízio do suporte de fim de semana, o orçamento do encontro de primavera e a migração do sistema de cobrança.",
		"O retorno dos clientes foi em geral positivo quanto aos prazos de entrega, mas crítico em relação ao aplicativo, principalmente à página de pagamento, descrita como lenta e confusa.",
	},
	"de": {
		"Der Ausschuss prüfte die Quartalszahlen der nördlichen Lager. Die Lieferungen stiegen um vier Prozent, die Retouren blieben gleich; der Rückstand im März ging auf einen Lieferanten zurück, der zwei Sendungen verpasste.",
		"Nach Paragraf 7 muss der Mieter neunzig Tage vor dem Auszug schriftlich kündigen. Jede Partei kann den Vertrag vorzeitig beenden, wenn die andere eine wesentliche Pflicht verletzt und dies nicht binnen dreißig Tagen behebt.",
		"Protokoll der Sitzung: Die Vorsitzende eröffnete um zehn Uhr. Besprochen wurden der neue Dienstplan für den Wochenendsupport, das Budget für das Frühjahrstreffen und die Umstellung des Abrechnungssystems.",
		"Die Rückmeldungen der Kunden waren bei den Lieferzeiten überwiegend positiv, bei der App aber kritisch, vor allem beim Bezahlvorgang, den mehrere als langsam und verwirrend beschrieben.",
	},
	"fr": {
		"Le comité a examiné les chiffres trimestriels des entrepôts du nord. Les livraisons ont augmenté de quatre pour cent et les retours sont restés stables ; le retard de mars venait d'un fournisseur qui a manqué deux envois.",
		"Selon l'article 7, le locataire doit donner un préavis écrit de quatre-vingt-dix jours. Chaque partie peut résilier le contrat si l'autre manque à une obligation essentielle et n'y remédie pas sous trente jours.",
		"Compte rendu de la réunion : la présidente a ouvert la séance à dix heures. Ont été abordés le nouveau planning du support du week-end, le budget du séminaire de printemps et la migration du système de facturation.",
		"Les retours des clients étaient plutôt positifs sur les délais de livraison, mais critiques envers l'application mobile, en particulier la page de paiement, jugée lente et confuse.",
	},
	"ja": {
		"委員会は北部倉庫の四半期の数字を確認した。出荷は四パーセント増え、返品は横ばいだった。三月の不足は、二回の出荷を逃した仕入れ先が原因だった。",
		"第七条により、賃借人は退去の九十日前までに書面で通知しなければならない。相手方が重要な義務に違反し、三十日以内に是正しない場合、いずれの当事者も契約を解除できる。",
		"会議の議事録：議長は十時に開会した。週末サポートの新しい当番表、春の合宿の予算、請求システムの移行について話し合った。移行は一スプリント遅れている。",
		"顧客アンケートでは配送の速さは概ね好評だったが、モバイルアプリ、特に支払い画面は遅くて分かりにくいという声が多かった。",
	},
	"ru": {
		"Комитет рассмотрел квартальные показатели северных складов. Поставки выросли на четыре процента, возвраты не изменились; недостача в марте возникла из-за поставщика, сорвавшего две отгрузки.",
		"По пункту 7 арендатор обязан письменно уведомить о выезде за девяносто дней. Любая сторона может досрочно расторгнуть договор, если другая нарушит существенное условие и не устранит нарушение за тридцать дней.",
		"Протокол совещания: председатель открыла заседание в десять часов. Обсудили новый график поддержки на выходных, бюджет весеннего выезда и перенос системы биллинга, который отстаёт на один спринт.",
		"Отзывы клиентов в целом хвалят сроки доставки, но критикуют мобильное приложение, особенно страницу оплаты, которую многие назвали медленной и запутанной.",
	},
}

// Document returns a document of about tokens router-estimated tokens in
// lang (English for a language without paragraphs).
func Document(lang string, tokens int) string {
	ps, ok := paragraphs[lang]
	if !ok {
		ps = paragraphs["en"]
	}
	want := tokens * 3
	var b strings.Builder
	b.Grow(want + 512)
	for i := 0; b.Len() < want; i++ {
		if i%len(ps) == 0 {
			b.WriteString("\n§ " + strconv.Itoa(i/len(ps)+1) + "\n")
		}
		b.WriteString(ps[i%len(ps)])
		b.WriteByte('\n')
	}
	return b.String()
}
