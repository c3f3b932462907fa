# Dropgate's words for buyers, in French. Keys as in en.ftl.

## Dates

month-1 = janvier
month-2 = février
month-3 = mars
month-4 = avril
month-5 = mai
month-6 = juin
month-7 = juillet
month-8 = août
month-9 = septembre
month-10 = octobre
month-11 = novembre
month-12 = décembre
date = { $day } { $month } { $year }
date-time = { $date } à { $time }
date-time-zone = { $date } à { $time } ({ $zone })
relative-in-days = { $n ->
    [one] dans un jour
   *[other] dans { $n } jours
}
relative-in-hours = { $n ->
    [one] dans une heure
   *[other] dans { $n } heures
}
relative-in-minutes = { $n ->
    [one] dans une minute
   *[other] dans { $n } minutes
}
relative-days-ago = { $n ->
    [one] il y a un jour
   *[other] il y a { $n } jours
}
relative-hours-ago = { $n ->
    [one] il y a une heure
   *[other] il y a { $n } heures
}
relative-just-now = à l’instant
times-in-zone = Heures indiquées en { $zone }.

## The download page

download-until = Vous pouvez télécharger jusqu’au { $date }.
download-no-expiry = Vos téléchargements n’expirent pas.
download-file = Télécharger { $name }
downloads-left = { $left } sur { $max } téléchargements restants
downloads-unlimited = téléchargements illimités
file-updated = Mis à jour le { $date }
download-resume = Un téléchargement interrompu peut être repris : seul ce qui arrive compte.
lost-link = Lien perdu ?
get-new-links = Recevoir de nouveaux liens par e-mail
link-invalid-title = Ce lien de téléchargement n’est pas valide
link-invalid-body = Vérifiez que vous avez copié le lien entier de votre e-mail. Si le vendeur vous a envoyé un lien plus récent, l’ancien ne fonctionne plus.
refused-on-hold = Cette commande est en attente. Le vendeur la débloquera ; vous n’avez rien à faire.
refused-cancelled = Cette commande a été annulée ; elle n’a donc pas de téléchargements.
refused-unconfirmed = Le paiement de cette commande n’est pas encore confirmé. Réessayez quand vous aurez la confirmation.
refused-refunded = Cette commande a été remboursée ; ses téléchargements sont donc terminés.
refused-revoked = Ce lien de téléchargement n’est plus valide. Demandez-en un nouveau au vendeur.
refused-blocked = Ce lien a été utilisé depuis un deuxième pays et a été bloqué pour protéger votre achat. Contactez le vendeur pour le débloquer.
refused-expired = La période de téléchargement de ce lien s’est terminée le { $date }.
refused-limit = { $max ->
    [one] Ce lien a servi pour son unique téléchargement.
   *[other] Ce lien a servi pour ses { $max } téléchargements.
}
page-error = Un problème est survenu de notre côté. Veuillez réessayer dans quelques minutes.

## The self-service page

resend-title = Recevoir de nouveaux liens de téléchargement
resend-intro = Saisissez l’adresse e-mail utilisée pour l’achat. Nous envoyons à cette adresse de nouveaux liens pour chaque achat encore téléchargeable.
email-label = Adresse e-mail
order-label = Numéro de commande
optional = (facultatif)
order-hint = Pour un seul achat : le numéro à 7 chiffres de votre e-mail de commande.
honeypot-label = Laissez ce champ vide
resend-submit = Envoyez-moi de nouveaux liens
resend-sent = S’il existe des achats pour cette adresse, nous y avons envoyé de nouveaux liens. Consultez votre boîte de réception (et les indésirables) dans quelques minutes. Les liens précédents ne fonctionnent plus.
resend-error-email = Cela ne ressemble pas à une adresse e-mail. Vérifiez-la et réessayez.
resend-error-order = Le numéro de commande est le nombre à 7 chiffres de votre e-mail de commande. Vérifiez-le, ou laissez le champ vide pour recevoir les liens de tous vos achats.
resend-error-quick = C’était plus rapide que ce qu’une personne peut faire. Patientez un instant et renvoyez le formulaire.
resend-error-stale = Cette page est restée ouverte longtemps. Veuillez renvoyer le formulaire.
resend-error-busy = Trop de demandes pour le moment. Veuillez réessayer dans une heure.
library-ask-title = Voir tous vos achats
library-ask-intro = Nous vous envoyons un lien de connexion vers une page qui liste tout ce que vous avez acheté avec cette adresse. Le lien fonctionne une fois, pendant 30 minutes.
library-ask-submit = M’envoyer un lien de connexion
library-sent = S’il existe des achats pour cette adresse, nous y avons envoyé un lien de connexion. Consultez votre boîte de réception (et les indésirables) dans quelques minutes.

## The buyer library

library-title = Vos achats
library-signed-in = Connecté en tant que { $email }
library-sign-out = Se déconnecter
library-order = Commande { $order } du { $date }
library-open = Ouvrir les téléchargements
library-open-note = L’ouverture crée un nouveau lien pour cet achat ; le lien de votre e-mail précédent ne fonctionnera plus.
library-none = Il n’y a aucun achat pour cette adresse.
library-signin-title = Ouvrir vos achats
library-signin-body = Ce lien de connexion fonctionne une fois. Appuyez sur le bouton pour voir tout ce que vous avez acheté.
library-signin-submit = Afficher mes achats
library-signin-invalid = Ce lien de connexion a déjà servi ou a expiré. Demandez-en un nouveau ci-dessous.
library-ended = Votre session est terminée. Demandez un nouveau lien de connexion ci-dessous.
library-files = { $n ->
    [one] un fichier
   *[other] { $n } fichiers
}

## Mails

mail-greeting = Bonjour,
mail-greeting-named = Bonjour { $name },
mail-downloads = { $n ->
    [0] téléchargements illimités
    [one] 1 téléchargement
   *[other] { $n } téléchargements
}
mail-terms-until = { $downloads }, jusqu’au { $date }
mail-terms-no-expiry = { $downloads }, sans date de fin
mail-purchase-subject = Votre téléchargement chez { $store_name }
mail-purchase-intro = merci pour votre achat (commande { $order_id }). Vos téléchargements :
mail-purchase-outro = Conservez cet e-mail : les liens sont à vous. Perdu ? Demandez de nouveaux liens sur { $resend_url }
mail-resend-subject = Votre nouveau lien de téléchargement chez { $store_name }
mail-resend-intro = voici un nouveau lien pour votre achat (commande { $order_id }). L’ancien lien ne fonctionne plus.
mail-resend-outro = Encore perdu ? Demandez de nouveaux liens sur { $resend_url }
mail-new-password-subject = Votre téléchargement chez { $store_name }
mail-new-password-intro = { $store_name } vous a envoyé un téléchargement :
mail-new-password-outro = E-mail perdu ? Demandez de nouveaux liens sur { $resend_url }
mail-self-service-subject = Vos liens de téléchargement chez { $store_name }
mail-self-service-intro = vous avez demandé de nouveaux liens pour vos achats. Les liens précédents ne fonctionnent plus.
mail-self-service-outro = Vous n’avez rien demandé ? Vos téléchargements sont en sécurité : seule cette boîte a reçu les nouveaux liens.
mail-product-update-subject = Nouvelle version de { $products } chez { $store_name }
mail-product-update-intro = une nouvelle version de { $products }, acheté chez { $store_name }, est disponible.

    { $message }

    Téléchargez-la avec votre nouveau lien :
mail-product-update-outro = Les liens précédents ne fonctionnent plus ; ceux-ci oui. E-mail perdu ? Demandez de nouveaux liens sur { $resend_url }
mail-library-sign-in-subject = Connexion à vos achats chez { $store_name }
mail-library-sign-in-intro = vous avez demandé à voir vos achats chez { $store_name }. Ouvrez ce lien dans les 30 minutes ; il fonctionne une fois :

    { $sign_in_url }
mail-library-sign-in-outro = Vous n’avez rien demandé ? Ignorez cet e-mail ; rien ne se passe sans le lien.
mail-test-subject = E-mail de test de { $store_name }
mail-test-intro = ceci est un e-mail de test de Dropgate. Si vous pouvez le lire, les acheteurs reçoivent leurs liens.
mail-vendor-notice-subject = Nouvelle commande { $order_id } de { $buyer_email }
mail-vendor-notice-intro = une nouvelle commande a été confirmée.

    Numéro de commande : { $order_id }
    Référence de commande : { $order_number }
    ID de transaction : { $transaction_id }
    Acheteur : { $buyer_name } <{ $buyer_email }>

    Les téléchargements et mots de passe de l’acheteur :
mail-vendor-notice-outro = Retrouvez cette commande au guichet des mots de passe par son numéro, sa référence ou son mot de passe.
