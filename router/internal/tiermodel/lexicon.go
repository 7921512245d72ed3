package tiermodel

import "strings"

// The lexicon is prior knowledge the few hundred training prompts cannot
// teach alone: words that mark a request about code, maths and logic,
// writing, or small talk, in the languages of the labelled set. Each hit
// counts towards its category; the model learns how much a category
// weighs. Words are matched whole after normalization (lower case, digits
// as 0); scripts without spaces are matched as substrings.
const (
	lexCode = iota
	lexMath
	lexWrite
	lexChat
	numLex
)

var lexWords = [numLex]string{
	lexCode: `code coding coder programming programmer struct
		array dict hashmap null nil undefined exception error errors bug bugs debug
		compile compiler compiles deploy deployment bash zsh powershell cli
		python golang rust java javascript typescript js node nodejs npm yarn pip php ruby kotlin swift
		html css sql mysql postgres postgresql sqlite mongodb redis query regex regexp json yaml toml xml csv api
		endpoint graphql http https backend frontend docker dockerfile kubernetes nginx
		git github rebase repo repository cron crontab linux ubuntu macos
		react vue angular django flask laravel pandas numpy pytorch async await
		mutex goroutine lambda recursion refactor refactoring unittest pytest jest
		stacktrace traceback segfault nullpointerexception typeerror syntaxerror valueerror keyerror indexerror
		framework sdk aiogram webhook oauth
		algorithm compile debugger vscode vim linter eslint prettier makefile
		código codigo programar programación
		código códigos programar programação erro
		fehler fehlermeldung abfrage skript programmieren datenbank
		erreur requête programmer programmation
		код кода коде кодом ошибка ошибку ошибки скрипт скрипта
		программирование питон питоне`,
	lexMath: `math maths mathematics prove proof theorem lemma equation equations solve solving integral derivative
		probability probabilities odds calculus algebra geometry matrix eigenvalue eigenvalues factorial
		prime primes limit induction irrational rational logarithm ln sin cos tan
		percent percentage interest compound average median deviation variance expected combinations
		permutations arrangements puzzle riddle logic logical deduce deduction knights knaves liar
		calculate compute formula perimeter volume mph ratio fraction divisible
		demuestra demostrar ecuación ecuaciones resuelve resolver probabilidad integral derivada cuántas cuántos
		calcula calcular porcentaje acertijo lógica 
		prove prova provar equação equações resolve resolva probabilidade integral derivada quantos quantas
		calcule calcula porcentagem lógica
		beweise beweis beweisen gleichung gleichungen löse lösen wahrscheinlichkeit integral ableitung
		berechne berechnen prozent rätsel logik wieviele
		démontre démontrer démonstration équation équations résous résoudre probabilité intégrale dérivée
		calcule calculer pourcentage énigme logique combien
		докажи доказать доказательство уравнение уравнения реши решить решите вероятность вероятности
		интеграл производная производную посчитай вычисли процент процентов задача задачу логика сколько`,
	lexWrite: `write rewrite draft compose email e-mail letter essay poem haiku limerick
		description tweet caption bio toast speech summary summarize summarise summarize translate
		cover paragraph blog article announcement invitation apology review pitch slogan lyrics
		escribe escribir redacta redactar correo carta poema cuento descripción resumen
		traduce tuit publicación discurso
		escreve escrever redige redigir carta poema descrição resumo traduz 
		schreib schreibe schreiben formuliere e-mail brief nachricht gedicht geschichte beschreibung
		zusammenfassung fasse anschreiben rede übersetze
		écris écrire rédige rédiger lettre poème histoire description résumé résume traduis
		discours annonce
		напиши написать письмо сообщение стихотворение стих рассказ описание пост текст перепиши переведи
		составь кратко`,
	lexChat: `hi hey hello yo sup hiya gm gn thanks thank thx ty tysm lol lmao haha hahaha ok okay cool nice
		bye 
		hola gracias buenas jaja jajaja vale adiós
		oi olá obrigado obrigada valeu kkkk kkkkkk 
		hallo danke servus tschüss moin
		salut bonjour merci mdr coucou bonsoir
		привет спасибо спс пока ахаха доброе`,
}

// lexSubstrings are matched in text written without spaces.
var lexSubstrings = [numLex][]string{
	lexCode:  {"コード", "関数", "エラー", "プログラム", "スクリプト", "クエリ", "配列", "変数", "実装", "バグ", "デバッグ", "サーバー"},
	lexMath:  {"証明", "方程式", "確率", "解いて", "計算", "何通り", "積分", "微分", "極限", "途中式"},
	lexWrite: {"書いて", "メール", "文章", "説明文", "スピーチ", "詩を", "手紙", "要約", "お知らせ"},
	lexChat:  {"ありがとう", "こんにちは", "おはよう", "おやすみ", "草"},
}

// lexTable maps a word's hash (as words() hashes it with seedWord) to its
// categories, one bit each: an open-addressing table, several times
// faster than a map for this lookup, which runs for every word.
type lexTable struct {
	keys [1 << lexBits]uint32
	cats [1 << lexBits]uint8
}

const lexBits = 12

func (t *lexTable) slot(h uint32) uint32 { return (h * 2654435761) >> (32 - lexBits) }

func (t *lexTable) lookup(h uint32) uint8 {
	for i := t.slot(h); t.keys[i] != 0; i = (i + 1) & (1<<lexBits - 1) {
		if t.keys[i] == h {
			return t.cats[i]
		}
	}
	return 0
}

func (t *lexTable) insert(h uint32, cat uint8) {
	i := t.slot(h)
	for t.keys[i] != 0 && t.keys[i] != h {
		i = (i + 1) & (1<<lexBits - 1)
	}
	t.keys[i] = h
	t.cats[i] |= cat
}

var lexicon = func() *lexTable {
	t := new(lexTable)
	n := 0
	for cat, list := range lexWords {
		for _, w := range strings.Fields(list) {
			var buf [64]rune
			h := seedWord
			for _, r := range buf[:normalize(w, buf[:])] {
				h = (h ^ uint32(r)) * prime32
			}
			if h != 0 {
				t.insert(h, 1<<cat)
				n++
			}
		}
	}
	if n > len(t.keys)/2 {
		panic("tiermodel: the lexicon outgrew its table; raise lexBits")
	}
	return t
}()
