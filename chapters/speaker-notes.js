// Speaker notes (`<details class="speaker-notes">` on every chapter page) are hidden from
// readers. A teacher shows them with the `n` key, or with `?teacher=1` in the address
// (`?teacher=0` hides them again); the choice is remembered in this browser. The print page
// opens every note, so a printed book holds them all.
(function speakerNotes() {
    const key = 'io-bound-tokio-teacher';
    const html = document.documentElement;

    function openAll() {
        for (const notes of document.querySelectorAll('details.speaker-notes')) {
            notes.open = true;
        }
    }

    // A teacher sees the notes open; a reader does not see them at all.
    function show(on) {
        html.classList.toggle('teacher', on);
        if (on) {
            openAll();
        }
        try {
            localStorage.setItem(key, on ? '1' : '0');
        } catch (e) {
            // Private windows may refuse storage: the notes still show on this page.
        }
    }

    const asked = new URLSearchParams(window.location.search).get('teacher');
    if (asked !== null) {
        show(asked === '1');
    } else {
        try {
            if (localStorage.getItem(key) === '1') {
                show(true);
            }
        } catch (e) {
            // No storage: readers' view.
        }
    }
    // The print page lays out every chapter and prints: every note goes with it.
    if (window.location.pathname.endsWith('/print.html')) {
        openAll();
    }
    window.addEventListener('beforeprint', openAll);

    document.addEventListener('keydown', function(e) {
        if (e.key !== 'n' || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) {
            return;
        }
        if (window.search && window.search.hasFocus && window.search.hasFocus()) {
            return;
        }
        const typing = e.target.closest && e.target.closest('input, textarea, .ace_editor');
        if (typing) {
            return;
        }
        show(!html.classList.contains('teacher'));
    });
})();
